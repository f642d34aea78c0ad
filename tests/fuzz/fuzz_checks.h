// What the fuzzers (tests/fuzz/*_fuzz.cpp) do with one input, shared with the crasher regression
// test (tests/unit/crashers_test.cpp), so that every input that ever crashed a reader is run
// through exactly the same code in every ctest run.
//
// Each check feeds the input to the readers the way batond, batonctl or baton-state would, then
// checks what must hold of what the readers accepted (a round trip gives the same thing back, the
// lazy decode reads what the full decode read, ...). A check returns "" when every property held
// and a description of the first one that did not otherwise; a crash, a sanitizer report or an
// exception escaping a reader that promises to return an error is a crash of the check itself.
//
// The inputs (and crashers' file extensions, tests/data/crashers/):
//   .snapshot  a snapshot container (serialize/snapshot.h). The header's checksum is filled in
//              before anything is read, so that mutated bodies get past it to the decoder.
//   .frame     bytes arriving on a control connection (supervisor/control_frame.h); each frame
//              is read as a Request (batond) and as a Response (batonctl).
//   .conf      a job file; a NUL byte splits it into the .conf and its .override. The whole
//              text is also parsed as an event expression.
//   .json      an Upstart state (migrate/upstart_import.h).
//   .notify    one datagram on the notify socket (base/notify_message.h).
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace baton::fuzz {

std::string checkSnapshot(std::string_view input);
std::string checkControl(std::string_view input);
std::string checkJobFile(std::string_view input);
std::string checkUpstart(std::string_view input);
std::string checkNotify(std::string_view input);

}  // namespace baton::fuzz

// The libFuzzer entry point of a target (compiled in only for the fuzzer binaries): a property
// that does not hold aborts, which libFuzzer reports as a crash and saves the input.
#ifdef BATON_FUZZ_ENTRY
#define BATON_FUZZ_TARGET(check)                                                           \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {                \
    const std::string problem = check(std::string_view(reinterpret_cast<const char*>(data), size)); \
    if (!problem.empty()) {                                                                \
      std::fprintf(stderr, "property violated: %s\n", problem.c_str());                    \
      std::abort();                                                                        \
    }                                                                                      \
    return 0;                                                                              \
  }
#else
#define BATON_FUZZ_TARGET(check)
#endif
