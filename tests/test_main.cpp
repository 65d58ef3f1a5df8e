// The test binaries' main: doctest's, except that a run whose filters select no test case fails.
// CTest runs each case by name (--test-case=<name>); a name that CMake's discovery mangles (a
// ';' splits it) would select nothing, and doctest would report that empty run as a success.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

namespace {

unsigned selected = 0;  // test cases that passed the filters in the last run

// Listens for the end of the run only.
struct SelectionCount final : doctest::IReporter {
  explicit SelectionCount(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& stats) override {
    selected = stats.numTestCasesPassingFilters;
  }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

}  // namespace

DOCTEST_REGISTER_LISTENER("selection-count", 1, SelectionCount);

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int result = context.run();
  if (context.shouldExit() || result != 0) return result;  // a query (--list-test-cases), or failed
  if (selected == 0) {
    std::fputs("test_main: the filters selected no test case\n", stderr);
    return 1;
  }
  return 0;
}
