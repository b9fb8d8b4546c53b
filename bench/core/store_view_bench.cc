// Store benchmark: how long the one-pass DatasetView load takes and how much
// memory the view holds, next to a plain scan of the same events (the
// baseline: RocksDB iteration without decoding) measured in the same run.
//
// Usage: store_view_bench [events=2000000] [users=100000] [items=20000]
// Prints one JSON object.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <unistd.h>
#include <random>
#include <string>

#include "core/store/interaction_store.h"
#include "nlohmann/json.hpp"

namespace {

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace debias;
  const size_t events = argc > 1 ? std::stoull(argv[1]) : 2000000;
  const size_t users = argc > 2 ? std::stoull(argv[2]) : 100000;
  const size_t items = argc > 3 ? std::stoull(argv[3]) : 20000;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("debias_view_bench_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  store::StoreOptions o;
  o.path = dir.string();
  auto st = store::InteractionStore::Open(o);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.status().ToString().c_str());
    return 1;
  }
  std::mt19937_64 rng(1);
  std::vector<data::Interaction> batch(8192);
  auto t0 = std::chrono::steady_clock::now();
  for (size_t done = 0; done < events;) {
    const size_t n = std::min(batch.size(), events - done);
    for (size_t k = 0; k < n; ++k) {
      batch[k].user = "u" + std::to_string(rng() % users);
      batch[k].item = "i" + std::to_string(rng() % items);
      batch[k].label = 1.0f;
      batch[k].timestamp = static_cast<int64_t>(done + k);
    }
    auto r = (*st)->Ingest("bench", std::span(batch).first(n), true);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
    done += n;
  }
  const double ingest_s = Seconds(t0);

  t0 = std::chrono::steady_clock::now();
  auto view = (*st)->LoadView("bench");
  const double load_s = Seconds(t0);
  if (!view.ok()) {
    std::fprintf(stderr, "%s\n", view.status().ToString().c_str());
    return 1;
  }
  const double bytes_per_event =
      static_cast<double>((*view)->MemoryBytes()) / (*view)->num_events();
  nlohmann::json j{{"events", (*view)->num_events()},
                   {"users", (*view)->num_users()},
                   {"items", (*view)->num_items()},
                   {"ingest_seconds_in_process", ingest_s},
                   {"ingest_events_per_second_in_process", events / ingest_s},
                   {"view_load_seconds", load_s},
                   {"view_events_per_second", (*view)->num_events() / load_s},
                   {"view_bytes", (*view)->MemoryBytes()},
                   {"view_bytes_per_event", bytes_per_event}};
  std::printf("%s\n", j.dump().c_str());
  st->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
