// The cost of a SecureContext, as a ratio to OpenSSL's bare SSL_CTX_new in the same process (run:
// build/release/benchmarks/tls_context_benchmark). A tls::connect without a secureContext makes
// one per connection, as Node's tls.connect does.
#include <evnet/tls.hpp>

#if EVNET_CATCH2_MAJOR >= 3
#include <catch2/catch_test_macros.hpp>
#else
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#endif

#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

// Microseconds per call of body(), best of several runs (the least disturbed one).
template <class Body>
double usPerCall(Body&& body, int calls) {
  double best = 1e12;
  for (int run = 0; run < 5; ++run) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) body();
    const std::chrono::duration<double, std::micro> elapsed =
        std::chrono::steady_clock::now() - start;
    best = std::min(best, elapsed.count() / calls);
  }
  return best;
}

long residentKiB() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  return 0;
}

}  // namespace

TEST_CASE("createSecureContext against SSL_CTX_new, as ratios") {
  const auto first = std::chrono::steady_clock::now();
  const evnet::tls::SecureContext kept = evnet::tls::createSecureContext();
  const std::chrono::duration<double, std::micro> firstTook =
      std::chrono::steady_clock::now() - first;
  double baseline = 0;
  double system = 0;
  for (int round = 0; round < 3; ++round) {  // alternated, so both see the same machine state
    baseline += usPerCall([] { SSL_CTX_free(SSL_CTX_new(TLS_method())); }, 200);
    system += usPerCall([] { evnet::tls::createSecureContext(); }, 200);
  }
  std::printf(
      "the first createSecureContext() of the process (reads the system's store): %.0f us\n",
      firstTook.count());
  std::printf(
      "createSecureContext() after it: %.1f us; SSL_CTX_new + SSL_CTX_free: %.1f us; "
      "ratio %.2fx\n",
      system / 3, baseline / 3, system / baseline);
  CHECK(kept);
}

TEST_CASE("the memory of a SecureContext, against SSL_CTX_new's") {
  constexpr int kContexts = 200;
  const evnet::tls::SecureContext first = evnet::tls::createSecureContext();
  std::vector<SSL_CTX*> bare;
  long before = residentKiB();
  for (int i = 0; i < kContexts; ++i) bare.push_back(SSL_CTX_new(TLS_method()));
  const double bareBytes = (residentKiB() - before) * 1024.0 / kContexts;
  std::vector<evnet::tls::SecureContext> contexts;
  before = residentKiB();
  for (int i = 0; i < kContexts; ++i) contexts.push_back(evnet::tls::createSecureContext());
  const double evnetBytes = (residentKiB() - before) * 1024.0 / kContexts;
  std::printf(
      "resident bytes per context, %d kept: createSecureContext() %.0f; SSL_CTX_new %.0f; "
      "ratio %.2fx\n",
      kContexts, evnetBytes, bareBytes, evnetBytes / bareBytes);
  for (SSL_CTX* ctx : bare) SSL_CTX_free(ctx);
  CHECK(first);
}
