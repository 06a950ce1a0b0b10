using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ambient.NodeBench;

/// <summary>
/// The L7 scenario's report (node-bench --scenario l7): the middle proxy of client -> ztunnel -> X -> ztunnel ->
/// server, X the waypoint (with and without governance) or HAProxy in HTTP mode, against the same chain with no
/// middle proxy (mode l4) in the same repetition. Medians over repetitions; latency added is the median of the
/// per-repetition differences with l4, as in the main report.
/// </summary>
internal static class L7Report
{
    private const string Baseline = "l4";
    private static readonly string[] Proxies = ["waypoint", "haproxy", "waypoint_governance", "waypoint_tcp"];
    private static readonly string[] Pcts = ["p50", "p90", "p99"];

    public static int Run(Args args)
    {
        var raw = Report.Raw.Load(args.Str("raw"));
        var meta = JsonNode.Parse(File.ReadAllText(args.Str("meta")))!.AsObject();
        string dir = args.Str("out-dir");
        Directory.CreateDirectory(dir);

        var l7 = new JsonObject
        {
            // One middle-proxy process per mode, so no averaging over nodes as in the L4 report.
            ["vcpu_per_1000rps"] = Per(Proxies, m => raw.Reps.Select(r => raw.Value(m, r, "vcpu_a") / (raw.Value(m, r, "achieved_rps") / 1000))),
            ["rss_mb"] = Per(Proxies, m => raw.Reps.Select(r => raw.Value(m, r, "rss_mb_a"))),
            // The whole node's cost of a request: the middle proxy and both agents (l4: the agents alone). HAProxy's
            // chain crosses the agent twice more than the waypoint's, which its own CPU above does not show.
            ["node_vcpu_per_1000rps"] = Per(Proxies.Prepend(Baseline).ToArray(), m => raw.Reps.Select(r =>
                ((m == Baseline ? 0 : raw.Value(m, r, "vcpu_a")) + raw.Value(m, r, "vcpu_agents")) / (raw.Value(m, r, "achieved_rps") / 1000))),
        };
        var added = new JsonObject();
        foreach (var m in Proxies)
        {
            var o = new JsonObject();
            foreach (var p in Pcts)
            {
                o[p] = Round(Report.Median(raw.Reps.Select(r => raw.Latency(m, r, p) - raw.Latency(Baseline, r, p))));
            }
            added[m] = o;
        }
        l7["latency_added_ms"] = added;
        var latency = new JsonObject();
        foreach (var m in Proxies.Prepend(Baseline))
        {
            var o = new JsonObject();
            foreach (var p in Pcts.Append("p999"))
            {
                o[p] = Round(Report.Median(raw.Reps.Select(r => raw.Latency(m, r, p))));
            }
            latency[m] = o;
        }
        l7["latency_ms"] = latency;
        // Governance cost: the waypoint's CPU per request with the policies on over the same without, per repetition.
        l7["governance_cpu_ratio"] = Round(Report.Median(raw.Reps.Select(r =>
            (raw.Value("waypoint_governance", r, "vcpu_a") / raw.Value("waypoint_governance", r, "achieved_rps"))
            / (raw.Value("waypoint", r, "vcpu_a") / raw.Value("waypoint", r, "achieved_rps")))));
        l7["achieved_rps"] = Per(Proxies.Prepend(Baseline).ToArray(), m => raw.Reps.Select(r => raw.Value(m, r, "achieved_rps")));
        // With tracing on: the spans the governance waypoint's exporter got accepted per repetition (proof that the
        // ratio above includes tracing: about 2 spans per sampled request).
        double spans = raw.Median("waypoint_governance", "spans_exported");
        if (!double.IsNaN(spans))
        {
            l7["governance_spans_exported"] = spans;
        }

        var json = new JsonObject { ["l7"] = l7, ["repetitions"] = raw.Reps.Count };
        foreach (var (k, v) in meta)
        {
            json[k] = v?.DeepClone();
        }
        string jsonPath = Path.Combine(dir, "node-bench-l7.json");
        File.WriteAllText(jsonPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        File.WriteAllText(Path.Combine(dir, "node-bench-l7.md"), Markdown(json));
        Console.WriteLine(jsonPath);
        return 0;
    }

    private static JsonObject Per(string[] modes, Func<string, IEnumerable<double>> values)
    {
        var o = new JsonObject();
        foreach (var m in modes)
        {
            o[m] = Round(Report.Median(values(m)));
        }
        return o;
    }

    private static JsonValue? Round(double v) => double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 4)) : null;

    private static string F(JsonNode? n, string format = "F2") =>
        n is null ? "n/a" : n.GetValue<double>().ToString(format, CultureInfo.InvariantCulture);

    private static string Markdown(JsonObject json)
    {
        var l7 = json["l7"]!;
        var sb = new StringBuilder();
        sb.Append("# node-bench, L7 scenario\n\n");
        sb.Append(CultureInfo.InvariantCulture, $"{json["date"]}, commit {json["commit"]}, {json["repetitions"]} repetition(s), load average {json["loadavg_start"]} at start, {json["loadavg_end"]} at the end.\n\n");
        sb.Append(CultureInfo.InvariantCulture, $"Waypoint build: {json["waypoint_build"]}. Agents: {json["ztunnel_build"]}. {json["haproxy_version"]}.\n\n");
        sb.Append("| middle proxy | vCPU per 1,000 req/s | node vCPU per 1,000 req/s (proxy + both agents) | peak RSS MB | added p50 ms | added p90 ms | added p99 ms |\n|---|---|---|---|---|---|---|\n");
        sb.Append(CultureInfo.InvariantCulture, $"| none (l4) | | {F(l7["node_vcpu_per_1000rps"]![Baseline], "F3")} | | | | |\n");
        foreach (var m in Proxies)
        {
            var a = l7["latency_added_ms"]![m]!;
            sb.Append(CultureInfo.InvariantCulture, $"| {m} | {F(l7["vcpu_per_1000rps"]![m], "F3")} | {F(l7["node_vcpu_per_1000rps"]![m], "F3")} | {F(l7["rss_mb"]![m], "F1")} | {F(a["p50"])} | {F(a["p90"])} | {F(a["p99"])} |\n");
        }
        sb.Append(CultureInfo.InvariantCulture, $"\nGovernance CPU ratio (waypoint with rate limit + retries{(json["tracing_percent"] is JsonNode t && t.GetValue<double>() > 0 ? " + tracing" : "")} / without): {F(l7["governance_cpu_ratio"], "F3")}{(l7["governance_spans_exported"] is JsonNode sp ? $"; spans exported by the governance waypoint per repetition: {sp}" : "")}\n\n");
        sb.Append("Latency (ms, median of repetitions):\n\n| mode | p50 | p90 | p99 | p99.9 |\n|---|---|---|---|---|\n");
        foreach (var (m, v) in l7["latency_ms"]!.AsObject())
        {
            sb.Append(CultureInfo.InvariantCulture, $"| {m} | {F(v!["p50"])} | {F(v["p90"])} | {F(v["p99"])} | {F(v["p999"])} |\n");
        }
        sb.Append("\n## Method\n\n");
        foreach (var line in json["method"]!.AsArray())
        {
            sb.Append("- ").Append(line!.GetValue<string>()).Append('\n');
        }
        return sb.ToString();
    }
}
