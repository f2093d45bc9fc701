// Built only with NODENET_SANITIZE: leaks on purpose, so the test suite can prove that
// LeakSanitizer is watching the C++ unit tests.
#include <cstdio>

int main() {
  static volatile int* leaked;
  leaked = new int[64];
  leaked = nullptr;
  std::puts("leaked 256 bytes");
  return 0;
}
