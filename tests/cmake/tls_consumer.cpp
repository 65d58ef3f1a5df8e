// The program consumer projects build with evnet::tls: the TLS header compiles and links OpenSSL.
#include <evnet/tls.hpp>
#include <evnet/version.hpp>

#include <cstdio>

int main() {
  evnet::tls::SecureContext context = evnet::tls::createSecureContext({});
  static_cast<void>(context);
  std::printf("evnet %s tls consumer: ok\n", evnet::version);
  return 0;
}
