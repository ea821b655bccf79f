// The two clocks outpost reads: steady for timers and deadlines, wall for the
// time written on records. Injectable, so schedules and timeouts are tested
// with a fake clock and no sleeping.
// Leaves to others: kernel packet timestamps (they come with the packets).
#pragma once

#include "probe.hpp"

namespace outpost {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime now() const = 0;
  virtual WallTime wall() const = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
  WallTime wall() const override {
    return std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
  }
};

// Starts at an arbitrary fixed point; moves only when told to.
class FakeClock final : public Clock {
 public:
  FakeClock() : steady_(std::chrono::hours(1000)), wall_(std::chrono::seconds(1419264900)) {}
  SteadyTime now() const override { return steady_; }
  WallTime wall() const override { return wall_; }
  void advance(Duration d) {
    steady_ += d;
    wall_ += d;
  }
  void set(SteadyTime t) { advance(t - steady_); }
  // The wall clock set (stepped) by d, as NTP or an administrator does; steady time goes on.
  void step_wall(Duration d) { wall_ += d; }

 private:
  SteadyTime steady_;
  WallTime wall_;
};

}  // namespace outpost
