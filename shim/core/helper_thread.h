// The shim's own threads (pool prefill, live view) run with every signal
// blocked: a program's signals then always reach the program's threads, and a
// SIGUSR2 for the live view never lands on the thread that waits for it
// (under ThreadSanitizer, which delivers a signal only when the receiving
// thread leaves its blocking call, that would wait forever).
#pragma once

#include <pthread.h>
#include <signal.h>

#include <thread>
#include <utility>

namespace egm {

template <typename Body>
void start_helper_thread(Body&& body) {
  sigset_t all, previous;
  sigfillset(&all);
  // Blocked before the thread starts, so that it has no window to take one.
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  std::thread(std::forward<Body>(body)).detach();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

}  // namespace egm
