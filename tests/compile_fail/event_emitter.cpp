// Each EVNET_CASE is code that must not compile; tests/CMakeLists.txt builds every case and
// checks the compiler's message. EVNET_CASE 0 compiles, proving the harness itself works.
#include <evnet/event_emitter.hpp>

#include <string_view>

using Chat = evnet::EventEmitter<evnet::Event<"message", void(std::string_view, std::string_view)>>;

int main() {
  Chat chat;
#if EVNET_CASE == 0
  chat.on("message", [](std::string_view, std::string_view) {});
  chat.emit("message", "ann", "hello");
#elif EVNET_CASE == 1
  chat.on("mesage", [](std::string_view, std::string_view) {});
#elif EVNET_CASE == 2
  chat.on("message", [](int) {});
#elif EVNET_CASE == 3
  chat.emit("message", 1, 2);
#elif EVNET_CASE == 4
  chat.emit("mesage", "ann", "hello");
#elif EVNET_CASE == 5
  chat.on<"mesage">([](std::string_view, std::string_view) {});
#elif EVNET_CASE == 6
  chat.on<"message">([](std::string_view) {});
#elif EVNET_CASE == 7
  chat.listenerCount("leave");
#endif
}
