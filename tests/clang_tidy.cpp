// The translation unit through which CI runs clang-tidy over every evnet header.
#include <evnet/evnet.hpp>

int main() { return evnet::version[0] == '\0' ? 1 : 0; }
