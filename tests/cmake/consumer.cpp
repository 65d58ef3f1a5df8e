// The program every consumer project builds: it includes the umbrella header and uses it, and
// names the asio it was compiled with (the fetch tests check that it is the fetched one).
#include <evnet/evnet.hpp>

#include <asio/version.hpp>

#include <cstdio>

int main() {
  std::printf("evnet %s consumer: ok (asio %d)\n", evnet::version, ASIO_VERSION);
  return 0;
}
