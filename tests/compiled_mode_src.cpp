// The one file of a program built in evnet's compiled mode (EVNET_SEPARATE_COMPILATION, see
// README "Compile time") that compiles evnet's sockets and servers for the others: the
// "compiled:" tests are net_socket_test and tls_test built that way.
#include <evnet/impl/src.hpp>
#if EVNET_TEST_TLS
#include <evnet/impl/tls_src.hpp>
#endif
