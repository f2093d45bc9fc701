// nodenet's own kernel threads.
//
// Kernel work can block for long (waiting for the xtables lock, committing a 20,000-rule table), so
// it does not run on libuv's four-thread pool, where it would starve file system and DNS work of the
// whole process. Each pool thread takes jobs from a shared queue, or from its own queue when a job
// must run on a particular thread (the netns probe). Results come back through one thread-safe
// function that holds the event loop open only while jobs are in flight.
#pragma once

#include <napi.h>

#include <deque>
#include <memory>

#include "job.h"

namespace nodenet {

class WorkerPool {
 public:
  WorkerPool(Napi::Env env, size_t threads);
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  // Joins the threads (a running job finishes first); queued jobs are dropped unsettled.
  ~WorkerPool();

  size_t size() const;

  // JS thread only. Returns the job's promise.
  Napi::Promise Submit(Napi::Env env, std::unique_ptr<Job> job);
  // JS thread only. Runs the job on thread `index` (< size()).
  Napi::Promise SubmitTo(Napi::Env env, size_t index, std::unique_ptr<Job> job);

  struct State;
  using JobQueue = std::deque<std::unique_ptr<Job>>;

 private:
  Napi::Promise Enqueue(Napi::Env env, JobQueue& queue, std::unique_ptr<Job> job);

  // Shared with the thread-safe function: at environment teardown its cleanup hook and this
  // object's destructor run in an order Node does not promise, so neither may own the other.
  std::shared_ptr<State> state_;
};

// Thread count from NODENET_KERNEL_THREADS (1..16), default 2.
size_t ConfiguredPoolSize();

}  // namespace nodenet
