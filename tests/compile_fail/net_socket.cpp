// Each EVNET_CASE is code that must not compile (see event_emitter.cpp): a wrong event name or
// listener on a net::Socket, the emitter users meet first. EVNET_CASE 0 compiles. CTest builds
// case 1 only (this file compiles slowly; event_emitter.cpp covers the rest).
#include <evnet/net.hpp>

int main() {
  evnet::net::Socket socket = evnet::net::connect(7000, "127.0.0.1");
#if EVNET_CASE == 0
  socket.on("data", [](evnet::Buffer) {});
#elif EVNET_CASE == 1
  socket.on("dat", [](evnet::Buffer) {});
#elif EVNET_CASE == 2
  socket.on("close", [](evnet::Buffer) {});
#endif
}
