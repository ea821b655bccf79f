#include <catch2/catch.hpp>
#include <sstream>

#include "report_html.hpp"
#include "report_reader.hpp"

using namespace outpost::report;

namespace {

Dataset read(const std::string& text) {
  Reader reader({});
  std::istringstream in(text);
  reader.read(in, "r.jsonl");
  return reader.finish();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Hostile names everywhere a record puts text on the page.
const char* const kHostile =
    R"({"type":"series","agent":"<script>alert('a')</script>","time":"2026-12-01T00:00:00Z","target":"<script>alert(1)</script>",)"
    R"("group":"<SCRIPT src=x>","method":"icmp","window_start":"2026-12-01T00:00:00Z","window_s":60,"sent":10,)"
    R"("received":0,"loss":1}
{"type":"event","agent":"<script>alert('a')</script>","time":"2026-12-01T00:00:10Z","kind":"target_down",)"
    R"("target":"<script>alert(1)</script>","group":"<SCRIPT src=x>","start":"2026-12-01T00:00:05Z",)"
    R"("verdict":{"where":"unknown","last_hop":"<img src=x onerror=alert(2)>","last_ttl":3,"reason":"\"><script>x</script>"}}
{"type":"trace","agent":"<script>alert('a')</script>","time":"2026-12-01T00:00:11Z","target":"<script>alert(1)</script>",)"
    R"("group":"<SCRIPT src=x>","address":"<b>","method":"icmp","reason":"failure","reached":false,)"
    R"("hops":[{"ttl":1,"addr":"<script>","asn":1,"asn_name":"<script>evil</script>"}]}
not json <script>
)";

}  // namespace

TEST_CASE("report page: every text from the records is escaped") {
  CHECK(html_escape(R"(<a href="x">'&'</a>)") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  const Dataset data = read(kHostile);
  CHECK(data.bad_lines == 1);
  RenderOptions options;
  options.inputs = {"<script>file.jsonl"};
  options.name_of = [](std::uint32_t) { return std::string("<script>named</script>"); };
  const std::string page = render_html(data, options);
  CHECK(count(lower(page), "<script") == 0);
  CHECK(count(lower(page), "<img") == 0);
  CHECK(count(page, "&lt;script&gt;alert(1)&lt;/script&gt;") > 0);
  CHECK(count(page, "data-target=\"&lt;script&gt;alert(1)&lt;/script&gt;\"") > 0);
  // The problem is on the page too, and no script at all.
  CHECK(count(page, "1 line(s) skipped") == 1);
}

TEST_CASE("report page: a chart per series, outage bands, the vantage's own outage apart") {
  std::string text;
  for (int m = 0; m < 10; ++m) {
    const std::string t = "2026-12-01T00:0" + std::to_string(m) + ":00Z";
    for (const char* method : {"icmp", "tcp"})
      text += R"({"type":"series","agent":"fra","time":")" + t + R"(","target":"t1","group":"kp","method":")" + method +
              R"(","port":80,"window_start":")" + t + R"(","window_s":60,"sent":10,"received":10,"loss":0,)"
              R"("rtt_min_ms":1,"rtt_p50_ms":2,"rtt_p95_ms":3,"rtt_max_ms":4})" "\n";
  }
  text += R"({"type":"event","agent":"fra","time":"2026-12-01T00:02:10Z","kind":"group_down","group":"kp",)"
          R"("targets":["t1/4"],"start":"2026-12-01T00:02:05Z","verdict":{"where":"upstream","last_hop":"198.19.0.6",)"
          R"("last_hop_asn":64500,"last_ttl":2,"baseline_reached_asn":64510}})" "\n";
  text += R"({"type":"event","agent":"fra","time":"2026-12-01T00:07:10Z","kind":"vantage_down","group":"control",)"
          R"("start":"2026-12-01T00:07:05Z"})" "\n";
  text += R"({"type":"event","agent":"fra","time":"2026-12-01T00:08:10Z","kind":"vantage_up","group":"control",)"
          R"("start":"2026-12-01T00:07:05Z","end":"2026-12-01T00:08:00Z","duration_s":55})" "\n";
  const std::string page = render_html(read(text), {});
  CHECK(count(page, "<svg class=\"chart\"") == 2);
  CHECK(count(page, "data-target=\"t1\" data-method=\"icmp\" data-agent=\"fra\"") == 1);
  CHECK(count(page, "data-target=\"t1\" data-method=\"tcp:80\" data-agent=\"fra\"") == 1);
  // The group outage, still open, runs to the end of the data; the vantage outage is drawn apart.
  CHECK(count(page, "class=\"outage outage-target\"") == 2);
  CHECK(count(page, "class=\"outage outage-vantage\"") == 2);
  CHECK(count(page, "data-end=\"2026-12-01 00:10:00\"") == 2);
  CHECK(count(page, "the carrier&#39;s problem") >= 1);
  CHECK(count(page, "inside the upstream carrier") >= 1);
  CHECK(count(page, "<script") == 0);
}

TEST_CASE("report page: the RTT axis tops at 1, 2 or 5 times a power of ten, the first not below the data") {
  // The top is the larger of 1.25 times the p95 and 1.5 times the median.
  auto top_label = [](double p50, double p95) {
    const std::string text =
        R"({"type":"series","agent":"fra","time":"2026-12-01T00:00:00Z","target":"t1","group":"kp","method":"icmp",)"
        R"("window_start":"2026-12-01T00:00:00Z","window_s":60,"sent":10,"received":10,"loss":0,"rtt_min_ms":)" +
        std::to_string(p50 / 2) + R"(,"rtt_p50_ms":)" + std::to_string(p50) + R"(,"rtt_p95_ms":)" +
        std::to_string(p95) + R"(,"rtt_max_ms":)" + std::to_string(p95) + "}\n";
    const std::string page = render_html(read(text), {});
    // The grid's labels, from 0 up: the last is the top.
    std::string last;
    const std::string mark = "text-anchor=\"end\">";
    for (auto at = page.find(mark); at != std::string::npos; at = page.find(mark, at + 1)) {
      const auto from = at + mark.size(), end = page.find('<', from);
      const std::string label = page.substr(from, end - from);
      if (label.find(':') == std::string::npos) last = label;  // not the time axis
    }
    return last;
  };
  CHECK(top_label(2, 3) == "5.0");          // 3.75
  CHECK(top_label(0.6, 0.8) == "1.00");     // 1 exactly: a power of ten is its own top
  CHECK(top_label(1, 8) == "10.0");         // 10 exactly
  CHECK(top_label(0.02, 0.03) == "0.05");   // 0.0375
  CHECK(top_label(0.1, 0.12) == "0.20");    // 0.15
  CHECK(top_label(200, 300) == "500");      // 375
  CHECK(top_label(1000, 1500) == "2000");   // 1875
  // A hostile record: 1.25 times its p95 overflows to infinity; the page still comes.
  CHECK(!top_label(1e300, 1.7e308).empty());
}

TEST_CASE("report page: no records is said in words") {
  const std::string page = render_html(read("garbage\n"), {});
  CHECK(count(page, "No series or event records") == 1);
  CHECK(count(page, "1 line(s) skipped") == 1);
  CHECK(count(page, "</html>") == 1);
}

TEST_CASE("report page: a baseline's hop taken from another path says when it was probed, not an RTT") {
  const Dataset data = read(
      R"({"type":"trace","agent":"a","time":"2026-12-01T00:00:01Z","target":"web","group":"kp","address":"198.18.0.1",)"
      R"("method":"icmp","reason":"baseline","reached":true,"hops":[)"
      R"({"ttl":1,"addr":"198.19.0.2","asn":64496,"probes":0,"reused_from":"2026-11-30T23:50:00.000000Z"},)"
      R"({"ttl":2,"addr":"198.19.0.6","asn":64500,"probes":1,"rtt_ms":1.25},)"
      R"({"ttl":3,"addr":"198.18.0.1","asn":64510,"probes":1,"rtt_ms":2.5,"target":true}]}
{"type":"event","agent":"a","time":"2026-12-01T00:00:10Z","kind":"target_down","target":"web","group":"kp",)"
      R"("start":"2026-12-01T00:00:05Z","verdict":{"where":"upstream","last_hop":"198.19.0.6","last_ttl":2,"reason":"r"}}
{"type":"trace","agent":"a","time":"2026-12-01T00:00:11Z","target":"web","group":"kp","address":"198.18.0.1",)"
      R"("method":"icmp","reason":"failure","reached":false,"hops":[)"
      R"({"ttl":1,"addr":"198.19.0.2","asn":64496,"probes":1,"rtt_ms":0.5},)"
      R"({"ttl":2,"addr":"198.19.0.6","asn":64500,"probes":1,"rtt_ms":1.5},{"ttl":3,"asn":null,"probes":2}]}
)");
  REQUIRE(data.traces.size() == 2);
  REQUIRE(data.traces[0].hops.size() == 3);
  CHECK(data.traces[0].hops[0].reused_from == "2026-11-30T23:50:00.000000Z");
  CHECK(data.traces[0].hops[1].reused_from.empty());
  const std::string page = render_html(data, RenderOptions{});
  // The baseline beside the failure trace: its first hop as probed before, the failure's with its RTT.
  CHECK(count(page, "198.19.0.2 <small>(as probed 2026-11-30T23:50:00.000000Z)</small>") == 1);
  CHECK(count(page, "198.19.0.2 <small>0.50 ms</small>") == 1);
  CHECK(count(page, "198.19.0.6 <small>1.25 ms</small>") == 1);
}
