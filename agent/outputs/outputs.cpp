#include "outputs.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "http_transport.hpp"
#include "influx_line.hpp"
#include "json_lines.hpp"
#include "nats_transport.hpp"
#include "remote_write.hpp"

namespace outpost {
namespace {

// What a collector output needs besides its spool: the wire and the format.
struct CollectorWire {
  std::unique_ptr<Transport> transport;
  CollectorOutput::Encoder encoder;
};

CollectorWire make_wire(Reactor& reactor, const OutputSpec& spec, const std::string& agent) {
  using Kind = OutputSpec::Kind;
  CollectorWire wire;
  if (spec.kind == Kind::nats) {
    NatsOptions o;
    o.url = spec.target;
    o.stream = spec.stream;
    o.subject = spec.subject;
    o.agent = agent;
    o.timeout = spec.timeout;
    o.token_file = spec.token_file;
    wire.transport = std::make_unique<NatsTransport>(reactor, std::move(o));
    wire.encoder = [](const Record& r) { return to_json_line(r); };
    return wire;
  }
  HttpOptions o;
  o.url = spec.target;
  o.timeout = spec.timeout;
  o.ca_file = spec.ca_file;
  o.token_file = spec.token_file;
  switch (spec.kind) {
    case Kind::http:
      o.gzip = spec.gzip.value_or(false);
      o.content_type = "application/x-ndjson";
      wire.encoder = [](const Record& r) { return to_json_line(r); };
      break;
    case Kind::influx:
      o.gzip = spec.gzip.value_or(true);
      o.content_type = "text/plain; charset=utf-8";
      wire.encoder = [](const Record& r) { return influx_lines(r); };
      break;
    case Kind::prometheus_remote_write:
      o.gzip = false;  // remote write is snappy-compressed by its protocol
      o.content_type = std::string(kRemoteWriteContentType);
      o.headers = {"Content-Encoding: " + std::string(kRemoteWriteContentEncoding),
                   "X-Prometheus-Remote-Write-Version: " + std::string(kRemoteWriteVersion)};
      o.body = [](const Batch& b) { return remote_write_body(b.payload); };
      wire.encoder = [](const Record& r) { return remote_write_series(r); };
      break;
    default: break;
  }
  wire.transport = std::make_unique<HttpTransport>(reactor, std::move(o));
  return wire;
}

}  // namespace

Outputs::Outputs() = default;

Outputs::~Outputs() {
  if (reap_timer_ && reactor_) reactor_->cancel(reap_timer_);
}

void Outputs::attach(Reactor& reactor, std::string agent, std::string state_dir) {
  reactor_ = &reactor;
  agent_ = std::move(agent);
  state_dir_ = std::move(state_dir);
  if (!syncer_) syncer_ = std::make_unique<Syncer>();
}

std::unique_ptr<Spool> Outputs::open_spool(const OutputSpec& spec) {
  const std::string dir = state_dir_.empty() ? std::string() : state_dir_ + "/spool/" + spec.name;
  return std::make_unique<Spool>(dir, spec.spool_bytes, syncer_.get());
}

std::unique_ptr<Output> Outputs::make(const OutputSpec& spec, std::unique_ptr<Spool> spool) {
  if (spec.kind == OutputSpec::Kind::file)
    return std::make_unique<FileOutput>(*reactor_, spec, std::move(spool), syncer_.get());
  CollectorWire wire = make_wire(*reactor_, spec, agent_);
  return std::make_unique<CollectorOutput>(*reactor_, spec, agent_, std::move(spool), std::move(wire.transport),
                                           std::move(wire.encoder));
}

std::string Outputs::apply(const std::vector<OutputSpec>& specs) {
  if (!reactor_) return "the outputs are not attached to a loop";
  auto find = [&](const std::string& name) -> Output* {
    for (auto& o : outputs_)
      if (o->name() == name) return o.get();
    return nullptr;
  };
  // First everything that can fail, while nothing has changed yet: the new
  // outputs are built whole, and a changed one's new wire and file are tried.
  std::vector<std::unique_ptr<Output>> built(specs.size());
  std::vector<CollectorWire> wires(specs.size());
  try {
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const OutputSpec& spec = specs[i];
      Output* old = find(spec.name);
      if (!old) {
        built[i] = make(spec, open_spool(spec));
      } else if (old->spec() != spec) {
        if (old->spec().kind != spec.kind)
          return "output " + spec.name + " changed from " + old->spec().kind_name() + " to " + spec.kind_name() +
                 ": its spool holds the old format; give the new output a new name";
        if (spec.kind == OutputSpec::Kind::file) JsonlFile probe(spec.target);
        else wires[i] = make_wire(*reactor_, spec, agent_);
      }
    }
  } catch (const std::exception& e) {
    return e.what();
  }
  std::vector<std::unique_ptr<Output>> next;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const OutputSpec& spec = specs[i];
    if (built[i]) {
      spdlog::info("output {}: {} {}", spec.name, spec.kind_name(), spec.target);
      next.push_back(std::move(built[i]));
      continue;
    }
    auto it = std::find_if(outputs_.begin(), outputs_.end(), [&](const auto& o) { return o->name() == spec.name; });
    if ((*it)->spec() == spec) {
      next.push_back(std::move(*it));
      outputs_.erase(it);
      continue;
    }
    // Changed: the new one takes over the old one's spool.
    std::unique_ptr<Spool> spool = (*it)->take_spool();
    remember(**it, false);
    outputs_.erase(it);
    spdlog::info("output {}: now {} {}", spec.name, spec.kind_name(), spec.target);
    if (spec.kind == OutputSpec::Kind::file) {
      next.push_back(std::make_unique<FileOutput>(*reactor_, spec, std::move(spool), syncer_.get()));
    } else {
      next.push_back(std::make_unique<CollectorOutput>(*reactor_, spec, agent_, std::move(spool),
                                                       std::move(wires[i].transport), std::move(wires[i].encoder)));
    }
  }
  // What is left was removed from the config: it drains, then goes.
  for (auto& old : outputs_) {
    old->flush();
    old->retire();
    spdlog::info("output {}: removed from the config; {} batches in its spool are still sent", old->name(),
                 old->spool().pending());
    retired_.push_back(std::move(old));
  }
  outputs_ = std::move(next);
  reap();
  return {};
}

void Outputs::reap() {
  std::erase_if(retired_, [this](const auto& o) {
    if (!o->drained()) return false;
    spdlog::info("output {}: drained, gone", o->name());
    remember(*o, true);
    return true;
  });
  if (!retired_.empty() && !reap_timer_)
    reap_timer_ = reactor_->after(std::chrono::seconds(1), [this] {
      reap_timer_ = 0;
      reap();
    });
}

void Outputs::write(const Record& record) {
  for (auto& o : outputs_) o->write(record);
  for (auto& s : sinks_) s->write(record);
}

void Outputs::flush() {
  for (auto& o : outputs_) o->flush();
  for (auto& o : retired_) o->flush();
  for (auto& s : sinks_) s->flush();
}

void Outputs::reopen() {
  for (auto& o : outputs_) o->reopen();
}

bool Outputs::drained() const {
  auto done = [](const auto& o) { return o->drained(); };
  return std::all_of(outputs_.begin(), outputs_.end(), done) && std::all_of(retired_.begin(), retired_.end(), done);
}

bool Outputs::sending() const {
  auto busy = [](const auto& o) { return o->sending(); };
  return std::any_of(outputs_.begin(), outputs_.end(), busy) || std::any_of(retired_.begin(), retired_.end(), busy);
}

std::vector<std::string> Outputs::stats_lines() const {
  std::vector<std::string> lines;
  for (const auto& o : outputs_) lines.push_back(o->stats_line());
  for (const auto& o : retired_) lines.push_back(o->stats_line() + " (removed from the config)");
  return lines;
}

namespace {

void add_stats(OutputStats& to, const OutputStats& from) {
  to.records += from.records;
  to.delivered += from.delivered;
  to.delivered_records += from.delivered_records;
  to.failures += from.failures;
  to.rejected += from.rejected;
  to.rejected_records += from.rejected_records;
}

}  // namespace

void Outputs::remember(const Output& output, bool spool_too) {
  OutputStatus& g = gone_[output.name()];
  g.name = output.name();
  g.kind = output.spec().kind_name();
  add_stats(g.stats, output.stats());
  if (spool_too) g.evicted_records += output.spool().stats().evicted_records;
}

std::vector<OutputStatus> Outputs::status() const {
  std::map<std::string, OutputStatus> by_name = gone_;
  for (auto& [name, s] : by_name) s.removed = true;
  auto add = [&](const Output& o, bool removed) {
    OutputStatus& s = by_name[o.name()];
    const bool first = s.name.empty();
    s.name = o.name();
    s.kind = o.spec().kind_name();
    add_stats(s.stats, o.stats());
    const Spool& spool = o.spool();
    s.evicted_records += spool.stats().evicted_records;
    s.queued_batches += spool.pending();
    s.queued_records += spool.pending_records();
    s.spool_bytes += spool.bytes();
    s.removed = (first || s.removed) && removed;
  };
  for (const auto& o : outputs_) add(*o, false);
  for (const auto& o : retired_) add(*o, true);
  std::vector<OutputStatus> out;
  out.reserve(by_name.size());
  for (auto& [name, s] : by_name) out.push_back(std::move(s));
  return out;
}

std::uint64_t Outputs::records_at_risk() const {
  if (!state_dir_.empty()) return 0;
  std::uint64_t n = 0;
  for (const auto& o : outputs_) n += o->spool().pending_records();
  for (const auto& o : retired_) n += o->spool().pending_records();
  return n;
}

}  // namespace outpost
