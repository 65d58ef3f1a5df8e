// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_IMPL_PROCESS_IPP
#define EVNET_DETAIL_IMPL_PROCESS_IPP

// The process emitter's functions that are not inline: included by process.hpp, or in compiled
// mode by <evnet/impl/src.hpp> only.
#include "evnet/process.hpp"

namespace evnet {
namespace detail {

EVNET_DECL void ProcessImpl::update() {
  if (gone_) return;
  const std::array<bool, 3> wanted{listenerCount("SIGINT") > 0, listenerCount("SIGTERM") > 0,
                                   listenerCount("SIGHUP") > 0};
  for (std::size_t k = 0; k < wanted.size(); ++k) {
    if (wanted[k] == added_[k]) continue;
    if (!signals_) signals_.emplace(loop_);
    std::error_code ignored;  // only an invalid signal number fails
    if (wanted[k])
      signals_->add(kSignals[k], ignored);
    else
      signals_->remove(kSignals[k], ignored);
    added_[k] = wanted[k];
  }
  const bool any = wanted[0] || wanted[1] || wanted[2];
  if (any && !waiting_) wait();
  if (!any && waiting_) signals_->cancel();
}

EVNET_DECL void ProcessImpl::wait() {
  waiting_ = true;
  signals_->async_wait([this](std::error_code ec, int number) {
    unrefCompletion();
    waiting_ = false;
    if (!ec) {
      update();  // waits again first, so that a throwing listener does not stop the signals
      if (number == SIGINT) emit<"SIGINT">();
      if (number == SIGTERM) emit<"SIGTERM">();
      if (number == SIGHUP) emit<"SIGHUP">();
    }
    update();  // once listeners are gone now
  });
#if !defined(ASIO_NO_TS_EXECUTORS)
  loop_.on_work_finished();  // the pending wait is not the loop's work (Node: unref)
#endif
}

}  // namespace detail

EVNET_DECL Process process(LoopRef loop) {
  using Plain = asio::io_context::executor_type;
  using Strand = asio::strand<Plain>;
  asio::io_context* context = nullptr;
  const asio::any_io_executor& executor = loop.executor();  // asio 1.22's target() checks no type
  if (executor.target_type() == typeid(Plain))
    context = &asio::query(*executor.target<Plain>(), asio::execution::context);
  else if (executor.target_type() == typeid(Strand))
    context =
        &asio::query(executor.target<Strand>()->get_inner_executor(), asio::execution::context);
  if (context == nullptr)
    throw std::invalid_argument("evnet: process() needs an asio::io_context or a strand of one");
  auto& service = asio::use_service<detail::ProcessService>(*context);
  if (!service.impl) service.impl = std::make_shared<detail::ProcessImpl>(*context);
  return Process(service.impl);
}

}  // namespace evnet

#endif  // EVNET_DETAIL_IMPL_PROCESS_IPP
