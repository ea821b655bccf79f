// Where records go: the outputs of `report.outputs` (files and collectors,
// each with its spool under agent.state_dir), built from the config, changed
// on a reload (a removed output drains its spool before it goes), and any
// sink a test adds.
// Leaves to others: encodings (records/), delivery (output.hpp and the transports).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "output.hpp"
#include "outpost_config.hpp"
#include "reactor.hpp"
#include "records.hpp"
#include "syncer.hpp"

namespace outpost {

// One output as the self-metrics see it: its counters since the start,
// across the rebuilds a reload makes of it (same name), and what it holds now.
struct OutputStatus {
  std::string name;
  std::string kind;               // OutputSpec::kind_name()
  OutputStats stats;              // never decreases while the process runs
  std::uint64_t evicted_records = 0;  // given up to keep the spool under spool_bytes
  std::size_t queued_batches = 0;     // waiting in the spool
  std::size_t queued_records = 0;
  std::uint64_t spool_bytes = 0;
  bool removed = false;  // no longer in the config (draining, or gone)
};

class Outputs {
 public:
  Outputs();
  ~Outputs();
  Outputs(const Outputs&) = delete;
  Outputs& operator=(const Outputs&) = delete;

  // Needed before apply(): the loop outputs run on, the agent's id (on batch
  // ids and NATS subjects) and agent.state_dir ("" : spools in memory).
  void attach(Reactor& reactor, std::string agent, std::string state_dir);
  // Makes the configured outputs these: new ones are opened, unchanged ones
  // kept, changed ones rebuilt over the same spool, removed ones retired
  // (they take no more records and go once their spool is sent). Returns ""
  // or why not (then nothing changed).
  std::string apply(const std::vector<OutputSpec>& specs);

  // A sink of the caller's own (tests).
  void add(std::unique_ptr<RecordSink> sink) { sinks_.push_back(std::move(sink)); }

  void write(const Record& record);
  // Everything taken goes on its way now: batches close into their spools,
  // files are written (the agent is stopping).
  void flush();
  // Files are opened again by path (SIGHUP; logrotate moved them).
  void reopen();
  // Every output has nothing open, nothing spooled and nothing in flight.
  bool drained() const;
  // Some output has batches waiting in its spool or in flight (Output::sending).
  bool sending() const;
  bool empty() const { return sinks_.empty() && outputs_.empty(); }

  const std::vector<std::unique_ptr<Output>>& outputs() const { return outputs_; }
  const std::vector<std::unique_ptr<Output>>& retired() const { return retired_; }
  // One stats line per output, retired ones included.
  std::vector<std::string> stats_lines() const;
  // One entry per output name ever configured, by name: live and retired
  // outputs of one name added up, and what those a reload replaced or
  // reaped had counted.
  std::vector<OutputStatus> status() const;
  // Records that would be lost if the process ended now: waiting in a spool
  // that is not on disk.
  std::uint64_t records_at_risk() const;

 private:
  std::unique_ptr<Output> make(const OutputSpec& spec, std::unique_ptr<Spool> spool);
  std::unique_ptr<Spool> open_spool(const OutputSpec& spec);
  void reap();
  // Keeps what an output counted before it is destroyed (status()).
  void remember(const Output& output, bool spool_too);

  Reactor* reactor_ = nullptr;
  std::string agent_;
  std::string state_dir_;
  std::unique_ptr<Syncer> syncer_;
  std::vector<std::unique_ptr<RecordSink>> sinks_;
  std::vector<std::unique_ptr<Output>> outputs_;
  std::vector<std::unique_ptr<Output>> retired_;
  Reactor::TimerId reap_timer_ = 0;
  std::map<std::string, OutputStatus> gone_;  // counters of destroyed outputs, by name
};

}  // namespace outpost
