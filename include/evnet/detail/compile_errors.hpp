// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_COMPILE_ERRORS_HPP
#define EVNET_DETAIL_COMPILE_ERRORS_HPP

// Functions that are called only from consteval constructors, when a check fails. Calling a
// non-constexpr function makes the constant evaluation fail, so the program does not compile,
// and the compiler's message names the function, which says what is wrong (the technique of
// {fmt}'s compile-time format strings).
namespace evnet::detail {

inline void eventNameIsNotDeclaredInThisEmitter() {}
inline void listenerCannotBeCalledWithTheEventsArguments() {}
inline void emitArgumentsDoNotMatchTheEventsSignature() {}

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_COMPILE_ERRORS_HPP
