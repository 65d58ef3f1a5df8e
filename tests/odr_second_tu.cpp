#include <evnet/evnet.hpp>

#include <string_view>

std::string_view versionSeenBySecondTranslationUnit() { return evnet::version; }
