#pragma once
// Data-parallel training through PyTorch's c10d (issue F8 "Data parallel"; docs/training.md): the
// worker side of `torchrun --no-python --nproc-per-node N mla-bench train ...`. torchrun starts N
// copies of the binary with RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT set; each
// joins a c10d TCPStore; CUDA tensors are reduced by NCCL (ProcessGroupNCCL, compiled into the pip
// wheel's libtorch), CPU tensors through the store itself (the wheel ships no Gloo headers; see
// distributed.cpp). What the trainer needs is one collective, an in-place sum over ranks
// (torch.distributed.all_reduce(op=SUM)), plus a barrier.
#include <ATen/core/Tensor.h>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace mlab::training {

// One worker's place in the job, as torch.distributed.run exports it.
struct DistributedEnv {
  int rank = 0;        // RANK: 0 .. world_size - 1
  int world_size = 1;  // WORLD_SIZE
  int local_rank = 0;  // LOCAL_RANK: the GPU of this worker (cuda:LOCAL_RANK)
  std::string master_addr = "127.0.0.1";  // MASTER_ADDR
  int master_port = 29500;                // MASTER_PORT
  // TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent already serves the TCPStore at
  // MASTER_ADDR:MASTER_PORT, so rank 0 connects as a client too (as torch's Python
  // _create_c10d_store does). Unset (ranks started by hand): rank 0 serves it.
  bool agent_store = false;
  // TORCHELASTIC_RESTART_COUNT: the keys of attempt N live under "mlab/attempt_N/", so that a
  // restarted job never reads what the failed attempt left in the agent's store.
  int restart_count = 0;
};

// The torchrun environment of this process, or std::nullopt when WORLD_SIZE is not set (a plain
// single-process run). Throws mlab::Error naming the variable when one is malformed, RANK or
// MASTER_PORT is missing while WORLD_SIZE is set, or RANK is outside [0, WORLD_SIZE).
std::optional<DistributedEnv> distributed_env_from_environment();

// Whether this build has the NCCL process group (CUDA; CMake MLAB_NCCL). CPU data parallel needs
// nothing beyond libtorch.
bool distributed_has_nccl();

// A joined process group. Collectives block until every rank has called them; every rank must
// call the same collectives in the same order with the same tensor list shapes.
class DistributedContext {
 public:
  // Joins the job: the TCPStore at master_addr:master_port (keys under "mlab/attempt_N/"), then
  // the NCCL process group when `device` is CUDA (it becomes the current device; pass
  // cuda:LOCAL_RANK). Blocks until all world_size ranks joined or `timeout` passed. Throws
  // mlab::Error when this build lacks NCCL for a CUDA device or c10d fails.
  DistributedContext(const DistributedEnv& env, c10::Device device,
                     std::chrono::milliseconds timeout = std::chrono::minutes(30));
  ~DistributedContext();
  DistributedContext(const DistributedContext&) = delete;
  DistributedContext& operator=(const DistributedContext&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  bool is_main() const { return env_.rank == 0; }
  const char* backend() const;  // "store" (CPU) | "nccl"

  // Sums each tensor over the ranks, in place. Tensors may live on any device and be of any
  // dtype the backend reduces (f32, f64, bf16, i64, ...); those of one dtype travel together in
  // one flat buffer on the group's device (cuda:LOCAL_RANK for NCCL, else the CPU), like DDP's
  // gradient buckets, and the sums are copied back. Every rank ends with the same values. On the
  // CPU the sum is formed in rank order, bitwise the sum a single process accumulating the ranks'
  // micro-batches in that order forms; NCCL's ring/tree order matches it with 2 ranks. Throws
  // mlab::Error when c10d reports a failure (e.g. a rank died and the store timed out).
  void all_reduce_sum(std::span<at::Tensor> tensors);
  // Returns when every rank has reached it (an all-reduce of one element, as DDP's join).
  void barrier();

 private:
  struct Impl;
  DistributedEnv env_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlab::training
