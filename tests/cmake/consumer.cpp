// The program every consumer project builds: it includes the umbrella header and uses it.
#include <evnet/evnet.hpp>

#include <cstdio>

int main() {
  std::printf("evnet %s consumer: ok\n", evnet::version);
  return 0;
}
