// Data-parallel training through PyTorch's c10d (issue F8; training/distributed.hpp). The store is
// the one torch.distributed builds in Python (torch/distributed/distributed_c10d.py:
// _new_process_group_helper): a TCPStore under a PrefixStore. CUDA tensors go through
// ProcessGroupNCCL (USE_C10D_NCCL is set for this file only, training/CMakeLists.txt, when the
// build found nccl.h). CPU tensors are summed through that store itself (store_all_reduce below):
// the pip wheel compiles Gloo into libtorch but ships none of the gloo/*.h headers that
// ProcessGroupGloo.hpp includes, and a fresh machine cannot be assumed to reach GitHub for them.
#include "training/distributed.hpp"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#if MLAB_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "core/error.hpp"

namespace mlab::training {
namespace {

std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, std::optional<int> fallback) {
  const auto v = env_value(name);
  if (!v) {
    MLAB_CHECK(fallback.has_value(), name, " is not set, but WORLD_SIZE is (start the ranks with "
               "torchrun, or set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT)");
    return *fallback;
  }
  std::size_t used = 0;
  long long x = 0;
  try {
    x = std::stoll(*v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MLAB_CHECK(used == v->size() && x >= 0 && x <= std::numeric_limits<int>::max(), name, "='", *v,
             "' is not a non-negative integer");
  return static_cast<int>(x);
}

}  // namespace

std::optional<DistributedEnv> distributed_env_from_environment() {
  if (!env_value("WORLD_SIZE")) return std::nullopt;
  DistributedEnv e;
  e.world_size = env_int("WORLD_SIZE", std::nullopt);
  MLAB_CHECK(e.world_size >= 1, "WORLD_SIZE=", e.world_size, " must be >= 1");
  e.rank = env_int("RANK", std::nullopt);
  MLAB_CHECK(e.rank < e.world_size, "RANK=", e.rank, " is not below WORLD_SIZE=", e.world_size);
  e.local_rank = env_int("LOCAL_RANK", e.rank);
  e.master_addr = env_value("MASTER_ADDR").value_or("127.0.0.1");
  e.master_port = env_int("MASTER_PORT", std::nullopt);
  MLAB_CHECK(e.master_port > 0 && e.master_port < 65536, "MASTER_PORT=", e.master_port,
             " is not a port");
  const auto agent = env_value("TORCHELASTIC_USE_AGENT_STORE");
  e.agent_store = agent && (*agent == "True" || *agent == "true" || *agent == "1");
  e.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0);
  return e;
}

bool distributed_has_nccl() { return MLAB_WITH_NCCL != 0; }

namespace {

std::string reduce_key(std::uint64_t call, int rank) {
  return "ar/" + std::to_string(call) + "/" + std::to_string(rank);
}

// The CPU collective: every rank publishes its flat buffer under "ar/<call>/<rank>", then reads
// all of them and adds them in rank order, so every rank forms the same sum, and that sum is the
// one a single process accumulating the ranks' micro-batches in rank order forms (bitwise: the
// additions are the same, in the same order). Having read every rank's key of call n proves every
// rank finished call n - 1, so each rank then deletes its own key of call n - 1: the store holds
// at most two calls' buffers. Traffic is world_size x the buffer per rank, through the store's
// one server: meant for CPU jobs (tests, small models), not for bandwidth.
void store_all_reduce(c10d::Store& store, int rank, int world, std::uint64_t call,
                      at::Tensor& flat) {
  const auto bytes = static_cast<std::size_t>(flat.numel()) * flat.element_size();
  std::vector<std::uint8_t> mine(bytes);
  if (bytes > 0) std::memcpy(mine.data(), flat.const_data_ptr(), bytes);
  store.set(reduce_key(call, rank), mine);
  at::Tensor sum;
  for (int r = 0; r < world; ++r) {
    std::vector<std::uint8_t> theirs = r == rank ? mine : store.get(reduce_key(call, r));
    MLAB_CHECK(theirs.size() == bytes, "data parallel: rank ", r, " sent ", theirs.size(),
               " bytes to all-reduce ", call, ", rank ", rank, " has ", bytes,
               " (the ranks disagree on the model or the tensors)");
    const at::Tensor x = at::from_blob(theirs.data(), {flat.numel()}, flat.options());
    if (r == 0) {
      sum = x.clone();
    } else {
      sum.add_(x);
    }
  }
  flat.copy_(sum);
  if (call > 0) store.deleteKey(reduce_key(call - 1, rank));
}

}  // namespace

struct DistributedContext::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> group;  // NCCL; null for the CPU store collective
  c10::Device device = c10::Device(c10::kCPU);
  const char* name = "";
  std::uint64_t calls = 0;  // CPU all-reduces so far (the key of the next one)
  std::chrono::milliseconds timeout{0};
};

DistributedContext::DistributedContext(const DistributedEnv& env, c10::Device device,
                                       std::chrono::milliseconds timeout)
    : env_(env), impl_(std::make_unique<Impl>()) {
  const bool cuda = device.is_cuda();
  MLAB_CHECK(!cuda || distributed_has_nccl(), "data parallel on ", device.str(),
             ": this build has no NCCL process group (configure with MLAB_CUDA=ON and the "
             "nvidia-nccl wheel's headers: CMake option MLAB_NCCL)");
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0 && !env.agent_store;
    so.numWorkers = env.agent_store ? std::nullopt : std::optional<std::size_t>(env.world_size);
    so.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    impl_->store = c10::make_intrusive<c10d::PrefixStore>(
        "mlab/attempt_" + std::to_string(env.restart_count), tcp);
    if (cuda) {
#if MLAB_WITH_NCCL
      impl_->device = c10::Device(c10::kCUDA, device.has_index() ? device.index() : env.local_rank);
      c10::cuda::set_device(impl_->device.index());
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank,
                                                                 env.world_size, opts);
      impl_->name = "nccl";
#endif
    } else {
      impl_->name = "store";
      impl_->timeout = timeout;
      // Joined when every rank has checked in (as a process group's constructor returns).
      impl_->store->set("joined/" + std::to_string(env.rank), std::vector<std::uint8_t>{1});
      std::vector<std::string> joined;
      for (int r = 0; r < env.world_size; ++r) joined.push_back("joined/" + std::to_string(r));
      impl_->store->wait(joined, timeout);
    }
  } catch (const c10::Error& e) {
    MLAB_FAIL("data parallel: rank ", env.rank, " of ", env.world_size, " could not join at ",
              env.master_addr, ":", env.master_port, ": ", e.what_without_backtrace());
  }
  TORCH_INTERNAL_ASSERT(impl_->group || !cuda, "no NCCL process group although the check passed");
}

DistributedContext::~DistributedContext() {
  if (!impl_) return;
  try {
    if (impl_->group) {
      // ProcessGroupNCCL warns when destroyed without shutdown() (destroy_process_group's job).
      impl_->group->shutdown();
    } else if (impl_->store && env_.world_size > 1) {
      // Rank 0 may serve the store: it stays until every rank has read the last all-reduce
      // (bounded, so that a rank that died does not hold the others up for the job's timeout).
      impl_->store->set("left/" + std::to_string(env_.rank), std::vector<std::uint8_t>{1});
      if (env_.rank == 0 && !env_.agent_store) {
        std::vector<std::string> left;
        for (int r = 0; r < env_.world_size; ++r) left.push_back("left/" + std::to_string(r));
        impl_->store->wait(left, std::min<std::chrono::milliseconds>(impl_->timeout,
                                                                     std::chrono::seconds(60)));
      }
    }
  } catch (const std::exception&) {
  }
}

const char* DistributedContext::backend() const { return impl_->name; }

void DistributedContext::all_reduce_sum(std::span<at::Tensor> tensors) {
  const at::NoGradGuard no_grad;
  // One flat buffer per dtype, in the order the dtypes first appear (the same on every rank).
  std::vector<at::ScalarType> order;
  std::map<at::ScalarType, std::vector<std::size_t>> members;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    TORCH_CHECK(tensors[i].defined(), "all_reduce_sum: tensor ", i, " is undefined");
    auto& m = members[tensors[i].scalar_type()];
    if (m.empty()) order.push_back(tensors[i].scalar_type());
    m.push_back(i);
  }
  try {
    for (const auto dtype : order) {
      std::vector<at::Tensor> flat;
      for (const auto i : members.at(dtype)) flat.push_back(tensors[i].reshape(-1).to(impl_->device));
      std::vector<at::Tensor> buffer = {at::cat(flat)};
      if (impl_->group) {
        impl_->group->allreduce(buffer)->wait();
      } else {
        store_all_reduce(*impl_->store, env_.rank, env_.world_size, impl_->calls++, buffer[0]);
      }
      int64_t offset = 0;
      for (const auto i : members.at(dtype)) {
        at::Tensor& t = tensors[i];
        t.copy_(buffer[0].narrow(0, offset, t.numel()).view(t.sizes()));
        offset += t.numel();
      }
    }
  } catch (const c10::Error& e) {
    MLAB_FAIL("data parallel (", impl_->name, "), rank ", env_.rank, " of ", env_.world_size,
              ": all-reduce failed: ", e.what_without_backtrace());
  }
}

void DistributedContext::barrier() {
  at::Tensor one = at::ones({1}, at::TensorOptions().dtype(at::kFloat).device(impl_->device));
  all_reduce_sum(std::span<at::Tensor>(&one, 1));
}

}  // namespace mlab::training
