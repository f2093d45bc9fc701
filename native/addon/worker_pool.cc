#include "worker_pool.h"

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nodenet {

namespace {
void CallJs(Napi::Env env, Napi::Function, WorkerPool::State* state, Job* job);
using Completion = Napi::TypedThreadSafeFunction<WorkerPool::State, Job, &CallJs>;
}  // namespace

struct WorkerPool::State {
  explicit State(size_t n) : size(n), own_queues(n) {}

  const size_t size;
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  JobQueue shared_queue;
  std::vector<JobQueue> own_queues;
  std::vector<std::thread> threads;  // started on first use, joined by StopThreads

  // JS thread only.
  Completion completion;
  bool completion_closed = false;
  size_t in_flight = 0;

  void StartThreads();
  void StopThreads();
  void ThreadMain(size_t index);
};

namespace {

void CallJs(Napi::Env env, Napi::Function, WorkerPool::State* state, Job* job) {
  std::unique_ptr<Job> owned(job);
  if (env == nullptr) return;  // the function is being torn down; state may be gone
  owned->Settle(env);
  if (--state->in_flight == 0 && !state->completion_closed) state->completion.Unref(env);
}

}  // namespace

void WorkerPool::State::StartThreads() {
  // Pool threads must not take process signals meant for Node's main thread.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (size_t i = 0; i < size; ++i) threads.emplace_back(&State::ThreadMain, this, i);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void WorkerPool::State::StopThreads() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
  }
  wake.notify_all();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

void WorkerPool::State::ThreadMain(size_t index) {
  pthread_setname_np(pthread_self(), ("nodenet-kern-" + std::to_string(index)).c_str());
  auto& own = own_queues[index];
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, [&] { return stopping || !own.empty() || !shared_queue.empty(); });
      if (stopping) return;
      auto& from = own.empty() ? shared_queue : own;
      job = std::move(from.front());
      from.pop_front();
    }
    job->Run();
    Job* done = job.release();
    if (completion.NonBlockingCall(done) != napi_ok) delete done;  // the environment is closing
  }
}

WorkerPool::WorkerPool(Napi::Env env, size_t threads) : state_(std::make_shared<State>(threads)) {
  auto* keep = new std::shared_ptr<State>(state_);
  state_->completion = Completion::New(
      env, "nodenet-kernel", 0, 1, state_.get(),
      [](Napi::Env, std::shared_ptr<State>* kept, State*) {
        (*kept)->StopThreads();  // no thread may touch the function after this
        (*kept)->completion_closed = true;
        delete kept;
      },
      keep);
  // Idle: let the process exit. Enqueue refs it while work is in flight.
  state_->completion.Unref(env);
}

WorkerPool::~WorkerPool() {
  state_->StopThreads();
  if (!state_->completion_closed) state_->completion.Release();
}

size_t WorkerPool::size() const { return state_->size; }

Napi::Promise WorkerPool::Submit(Napi::Env env, std::unique_ptr<Job> job) {
  return Enqueue(env, state_->shared_queue, std::move(job));
}

Napi::Promise WorkerPool::SubmitTo(Napi::Env env, size_t index, std::unique_ptr<Job> job) {
  return Enqueue(env, state_->own_queues.at(index), std::move(job));
}

Napi::Promise WorkerPool::Enqueue(Napi::Env env, JobQueue& queue, std::unique_ptr<Job> job) {
  State& s = *state_;
  if (s.completion_closed) throw Napi::Error::New(env, "nodenet: the kernel worker threads have shut down");
  Napi::Promise promise = job->Promise();
  if (s.in_flight++ == 0) s.completion.Ref(env);
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.threads.empty()) s.StartThreads();
    queue.push_back(std::move(job));
  }
  s.wake.notify_all();
  return promise;
}

size_t ConfiguredPoolSize() {
  const char* value = std::getenv("NODENET_KERNEL_THREADS");
  if (value == nullptr || *value == '\0') return 2;
  char* end = nullptr;
  long n = std::strtol(value, &end, 10);
  if (*end != '\0' || n < 1 || n > 16) return 2;
  return static_cast<size_t>(n);
}

}  // namespace nodenet
