using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScottPlot;

namespace Ambient.NodeBench;

/// <summary>
/// Turns the driver's raw measurements (one JSON line per number) into node-bench.json, node-bench.md and the
/// PNG plots. Every reported figure is a median over repetitions; latency added over direct is the median of
/// the differences taken within each repetition, because the modes alternate and a repetition shares the
/// VM's noise of that moment.
/// </summary>
internal static class Report
{
    private static readonly string[] Modes = ["direct", "ambient", "haproxy"];
    private static readonly string[] Proxies = ["ambient", "haproxy"];
    private static readonly string[] Pcts = ["p50", "p90", "p99"];

    public static int Run(Args args)
    {
        var raw = Raw.Load(args.Str("raw"));
        var meta = JsonNode.Parse(File.ReadAllText(args.Str("meta")))!.AsObject();
        string dir = args.Str("out-dir");
        Directory.CreateDirectory(dir);

        var json = new JsonObject();
        json["throughput_gbps"] = PerMode(Modes, m => raw.Median(m, "throughput_gbps"));
        json["throughput_gbps_4streams"] = PerMode(Modes, m => raw.Median(m, "throughput_gbps_4streams"));
        var added = new JsonObject();
        foreach (var m in Proxies)
        {
            added[m] = PerMode(Pcts, p => Median(raw.Reps.Select(r => raw.Latency(m, r, p) - raw.Latency("direct", r, p))));
        }
        json["latency_added_ms"] = added;
        json["latency_ms"] = PerMode(Modes, m => null, (o, m) => o[m] = PerMode(Pcts.Append("p999").ToArray(), p => Median(raw.Reps.Select(r => raw.Latency(m, r, p)))));
        // Per agent: Istio's figures are for one ztunnel; the path has two agents (and two HAProxies).
        json["vcpu_per_1000rps"] = PerMode(Proxies, m => Median(raw.Reps.Select(r =>
            (raw.Value(m, r, "vcpu_a") + raw.Value(m, r, "vcpu_b")) / 2 / (raw.Value(m, r, "achieved_rps") / 1000))));
        json["rss_mb"] = PerMode(Proxies, m => Median(raw.Reps.Select(r => Math.Max(raw.Value(m, r, "rss_mb_a"), raw.Value(m, r, "rss_mb_b")))));
        json["connections_per_second"] = PerMode(Proxies.Prepend("direct").ToArray(), m => raw.Median(m, "connections_per_second"));
        json["kb_per_idle_connection"] = PerMode(Proxies, m => raw.Median(m, "kb_per_idle_connection"));
        json["repetitions"] = raw.Reps.Count;
        foreach (var (k, v) in meta)
        {
            json[k] = v?.DeepClone();
        }

        string jsonPath = Path.Combine(dir, "node-bench.json");
        File.WriteAllText(jsonPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        ThroughputPlot(json, Path.Combine(dir, "node-bench-throughput.png"));
        LatencyPlot(raw, Path.Combine(dir, "node-bench-latency.png"));
        File.WriteAllText(Path.Combine(dir, "node-bench.md"), Markdown(json, raw, args.Str("profile", ""), args.Str("findings", "")));
        Console.WriteLine(jsonPath);
        return 0;
    }

    private static JsonObject PerMode(string[] keys, Func<string, double?> value, Action<JsonObject, string>? custom = null)
    {
        var o = new JsonObject();
        foreach (var k in keys)
        {
            if (custom is not null)
            {
                custom(o, k);
            }
            else
            {
                double? v = value(k);
                o[k] = v is double d && double.IsFinite(d) ? Math.Round(d, 4) : null;
            }
        }
        return o;
    }

    internal static double Median(IEnumerable<double> values)
    {
        var v = values.Where(double.IsFinite).Order().ToArray();
        return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
    }

    private static double Num(JsonNode? node, params string[] path)
    {
        foreach (var p in path)
        {
            node = node?[p];
        }
        return node is null ? double.NaN : node.GetValue<double>();
    }

    private static void ThroughputPlot(JsonObject json, string path)
    {
        var plt = new Plot();
        Color[] colors = [Colors.Gray, Colors.SteelBlue, Colors.DarkOrange];
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        string[] series = ["throughput_gbps", "throughput_gbps_4streams"];
        for (int s = 0; s < series.Length; s++)
        {
            for (int m = 0; m < Modes.Length; m++)
            {
                double v = Num(json, series[s], Modes[m]);
                double x = (s * 4) + m;
                bars.Add(new Bar { Position = x, Value = double.IsFinite(v) ? v : 0, FillColor = colors[m], Label = double.IsFinite(v) ? v.ToString("F2", CultureInfo.InvariantCulture) : "n/a" });
            }
            ticks.Add(new Tick((s * 4) + 1, s == 0 ? "1 stream" : "4 streams"));
        }
        var plot = plt.Add.Bars(bars);
        plot.ValueLabelStyle.FontSize = 14;
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        plt.Axes.Margins(bottom: 0);
        for (int m = 0; m < Modes.Length; m++)
        {
            plt.Legend.ManualItems.Add(new LegendItem { LabelText = Modes[m], FillColor = colors[m] });
        }
        plt.ShowLegend(Alignment.UpperRight);
        plt.Title("iperf3 throughput, client pod (node-a) -> server pod (node-b), median");
        plt.YLabel("Gbit/s");
        plt.SavePng(path, 900, 500);
    }

    private static void LatencyPlot(Raw raw, string path)
    {
        var plt = new Plot();
        Color[] colors = [Colors.Gray, Colors.SteelBlue, Colors.DarkOrange];
        for (int m = 0; m < Modes.Length; m++)
        {
            bool first = true;
            foreach (int r in raw.Reps)
            {
                var pts = raw.Percentiles(Modes[m], r);
                if (pts.Count == 0)
                {
                    continue;
                }
                // HdrHistogram's percentile axis: x = log10(1 / (1 - p)), so p90, p99, p99.9 are evenly spaced.
                var xs = new List<double>();
                var ys = new List<double>();
                foreach (var (p, ms) in pts)
                {
                    if (p >= 99.99)
                    {
                        break;
                    }
                    xs.Add(Math.Log10(100 / (100 - p)));
                    ys.Add(ms);
                }
                var sc = plt.Add.ScatterLine(xs.ToArray(), ys.ToArray(), colors[m]);
                sc.LineWidth = 2;
                if (first)
                {
                    sc.LegendText = Modes[m];
                    first = false;
                }
            }
        }
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            [new Tick(0, "p0"), new Tick(1, "p90"), new Tick(2, "p99"), new Tick(3, "p99.9"), new Tick(4, "p99.99")]);
        plt.ShowLegend(Alignment.UpperLeft);
        plt.Title("HTTP/1.1 latency at 1,000 req/s of 1 KB (open loop), one line per repetition");
        plt.YLabel("latency (ms)");
        plt.XLabel("percentile");
        plt.SavePng(path, 900, 500);
    }

    private static string F(double v, string fmt = "F2") => double.IsFinite(v) ? v.ToString(fmt, CultureInfo.InvariantCulture) : "n/a";

    private static string Markdown(JsonObject json, Raw raw, string profilePath, string findingsPath)
    {
        var sb = new StringBuilder();
        double T(params string[] p) => Num(json, p);
        sb.AppendLine("# Node benchmark: direct vs ambient vs HAProxy");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Generated by `perf/node-bench/node-bench{(json["quick"]?.GetValue<bool>() == true ? " --quick" : "")}` on {json["date"]}, commit `{json["commit"]}`. ");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Machine: {json["machine"]?["nproc"]} vCPU, {json["machine"]?["cpu_model"]}, kernel {json["machine"]?["kernel"]}. ");
        sb.AppendLine(CultureInfo.InvariantCulture, $"{raw.Reps.Count} repetition(s), modes alternating within each; every figure is the median over repetitions (spread in brackets: min–max). ");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Load average at start / end: {json["loadavg_start"]} / {json["loadavg_end"]} (other sessions share this VM; that is the noise in the spreads). ");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Agent build: {json["ztunnel_build"]}. HAProxy: {json["haproxy_version"]}, nbthread {json["haproxy_nbthread"]}. ");
        sb.AppendLine();
        sb.AppendLine("## Targets (issue 4)");
        sb.AppendLine();
        sb.AppendLine("| target | measured | goal | ratio | verdict |");
        sb.AppendLine("|---|---|---|---|---|");
        void Target(string name, double measured, double goal, bool higherIsBetter, string unit)
        {
            bool met = higherIsBetter ? measured >= goal : measured <= goal;
            double ratio = measured / goal;
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {F(measured, "F3")} {unit} | {(higherIsBetter ? "≥" : "≤")} {F(goal, "F3")} {unit} | {F(ratio)}× | {(double.IsFinite(measured) && met ? "**met**" : "not met")} |");
        }
        Target("single-stream throughput ≥ 1.5 × HAProxy", T("throughput_gbps", "ambient"), 1.5 * T("throughput_gbps", "haproxy"), true, "Gbit/s");
        Target("4-stream throughput ≥ 1.5 × HAProxy", T("throughput_gbps_4streams", "ambient"), 1.5 * T("throughput_gbps_4streams", "haproxy"), true, "Gbit/s");
        Target("p99 latency added ≤ 0.20 ms (Istio, two ztunnels)", T("latency_added_ms", "ambient", "p99"), 0.20, false, "ms");
        Target("p99 latency added below HAProxy's", T("latency_added_ms", "ambient", "p99"), T("latency_added_ms", "haproxy", "p99"), false, "ms");
        Target("vCPU per 1,000 req/s per agent ≤ 0.06", T("vcpu_per_1000rps", "ambient"), 0.06, false, "vCPU");
        Target("peak RSS per agent ≤ 24 MB", T("rss_mb", "ambient"), 24, false, "MB");
        Target("memory per idle tunneled connection ≤ 8 KB", T("kb_per_idle_connection", "ambient"), 8, false, "KB");
        sb.AppendLine();
        sb.AppendLine("## Against Istio's published figures (shared/REFERENCE.md)");
        sb.AppendLine();
        sb.AppendLine("| figure | Istio (Rust ztunnel) | Ambient (this run) | HAProxy (this run) |");
        sb.AppendLine("|---|---|---|---|");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| vCPU per proxy at 1,000 req/s of 1 KB | ~0.06 (Istio 1.24) | {F(T("vcpu_per_1000rps", "ambient"), "F3")} | {F(T("vcpu_per_1000rps", "haproxy"), "F3")} |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| memory per proxy | ~12 MB | {F(T("rss_mb", "ambient"), "F1")} MB peak RSS | {F(T("rss_mb", "haproxy"), "F1")} MB peak RSS |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| latency added by the path, p90 | ~0.17 ms (Istio 1.22) | {F(T("latency_added_ms", "ambient", "p90"), "F3")} ms | {F(T("latency_added_ms", "haproxy", "p90"), "F3")} ms |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| latency added by the path, p99 | ~0.20 ms (Istio 1.22) | {F(T("latency_added_ms", "ambient", "p99"), "F3")} ms | {F(T("latency_added_ms", "haproxy", "p99"), "F3")} ms |");
        sb.AppendLine("| sizing threshold per node | 20k connections, 100k req/s, 5 Gbit/s | see throughput below | |");
        sb.AppendLine();
        sb.AppendLine("Istio's figures come from its own (larger) benchmark machines; the ratios that matter here are against `direct` and HAProxy measured in the same run on this VM.");
        sb.AppendLine();
        sb.AppendLine("## All results (medians)");
        sb.AppendLine();
        sb.AppendLine("| metric | direct | ambient | haproxy |");
        sb.AppendLine("|---|---|---|---|");
        void Row(string name, string key, string fmt, Func<string, int, double> perRep)
        {
            sb.Append(CultureInfo.InvariantCulture, $"| {name} |");
            foreach (var m in Modes)
            {
                var vals = raw.Reps.Select(r => perRep(m, r)).Where(double.IsFinite).ToArray();
                sb.Append(vals.Length == 0 ? " – |" : vals.Length == 1 ? $" {F(vals[0], fmt)} |" : $" {F(Median(vals), fmt)} [{F(vals.Min(), fmt)}–{F(vals.Max(), fmt)}] |");
            }
            sb.AppendLine();
            _ = key;
        }
        Row("throughput, 1 stream (Gbit/s)", "", "F2", (m, r) => raw.Value(m, r, "throughput_gbps"));
        Row("throughput, 4 streams (Gbit/s)", "", "F2", (m, r) => raw.Value(m, r, "throughput_gbps_4streams"));
        foreach (var p in Pcts.Append("p999"))
        {
            Row($"latency {p} (ms)", "", "F3", (m, r) => raw.Latency(m, r, p));
        }
        foreach (var p in Pcts)
        {
            Row($"latency {p} added over direct (ms)", "", "F3", (m, r) => m == "direct" ? double.NaN : raw.Latency(m, r, p) - raw.Latency("direct", r, p));
        }
        Row("achieved req/s", "", "F0", (m, r) => raw.Value(m, r, "achieved_rps"));
        Row("vCPU, proxy on node-a", "", "F3", (m, r) => raw.Value(m, r, "vcpu_a"));
        Row("vCPU, proxy on node-b", "", "F3", (m, r) => raw.Value(m, r, "vcpu_b"));
        Row("peak RSS, node-a proxy (MB)", "", "F1", (m, r) => raw.Value(m, r, "rss_mb_a"));
        Row("peak RSS, node-b proxy (MB)", "", "F1", (m, r) => raw.Value(m, r, "rss_mb_b"));
        Row("RSS per proxy after the iperf3 tests (MB)", "", "F1", (m, r) => raw.Value(m, r, "rss_mb_after_iperf"));
        Row("new connections per second", "", "F0", (m, r) => raw.Value(m, r, "connections_per_second"));
        Row("KB per idle connection (both proxies)", "", "F2", (m, r) => raw.Value(m, r, "kb_per_idle_connection"));
        Row("idle connections held", "", "F0", (m, r) => raw.Value(m, r, "idle_connections"));
        Row("vCPU per agent during 1-stream iperf3", "", "F2", (m, r) => (raw.Value(m, r, "iperf_vcpu_a") + raw.Value(m, r, "iperf_vcpu_b")) / 2);
        sb.AppendLine();
        sb.AppendLine("![throughput](node-bench-throughput.png)");
        sb.AppendLine();
        sb.AppendLine("![latency](node-bench-latency.png)");
        sb.AppendLine();
        sb.AppendLine("## How it was measured");
        sb.AppendLine();
        if (json["method"] is JsonArray method)
        {
            foreach (var line in method)
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"- {line}");
            }
        }
        sb.AppendLine();
        if (findingsPath.Length > 0 && File.Exists(findingsPath))
        {
            sb.AppendLine(File.ReadAllText(findingsPath).TrimEnd());
            sb.AppendLine();
        }
        if (profilePath.Length > 0 && File.Exists(profilePath))
        {
            sb.AppendLine("## Profile of this run (perf, agent on node-a then node-b, 1-stream iperf3, self time)");
            sb.AppendLine();
            sb.AppendLine("```");
            sb.AppendLine(File.ReadAllText(profilePath).TrimEnd());
            sb.AppendLine("```");
        }
        return sb.ToString();
    }

    /// <summary>The raw measurements: lines of {"rep":1,"mode":"ambient","key":"throughput_gbps","value":2.3}
    /// or {"rep":1,"mode":"direct","key":"latency","file":"..."} pointing at the load tool's output.</summary>
    internal sealed class Raw
    {
        private readonly Dictionary<(string, int, string), double> _values = [];
        private readonly Dictionary<(string, int), JsonNode> _latency = [];
        public List<int> Reps { get; } = [];

        public static Raw Load(string path)
        {
            var raw = new Raw();
            foreach (var line in File.ReadLines(path))
            {
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }
                var o = JsonNode.Parse(line)!;
                int rep = o["rep"]!.GetValue<int>();
                string mode = o["mode"]!.GetValue<string>();
                string key = o["key"]!.GetValue<string>();
                if (!raw.Reps.Contains(rep))
                {
                    raw.Reps.Add(rep);
                }
                if (key == "latency")
                {
                    string file = o["file"]!.GetValue<string>();
                    if (File.Exists(file))
                    {
                        var lat = JsonNode.Parse(File.ReadAllText(file))!;
                        raw._latency[(mode, rep)] = lat;
                        raw._values[(mode, rep, "achieved_rps")] = lat["achieved_rps"]!.GetValue<double>();
                    }
                }
                else
                {
                    raw._values[(mode, rep, key)] = o["value"]!.GetValue<double>();
                }
            }
            return raw;
        }

        public double Value(string mode, int rep, string key) => _values.TryGetValue((mode, rep, key), out var v) ? v : double.NaN;

        public double Median(string mode, string key) => Report.Median(Reps.Select(r => Value(mode, r, key)));

        public double Latency(string mode, int rep, string pct) =>
            _latency.TryGetValue((mode, rep), out var l) && l[$"{pct}_ms"] is JsonNode n ? n.GetValue<double>() : double.NaN;

        public List<(double, double)> Percentiles(string mode, int rep)
        {
            var list = new List<(double, double)>();
            if (_latency.TryGetValue((mode, rep), out var l) && l["percentiles"] is JsonArray a)
            {
                foreach (var p in a)
                {
                    list.Add((p![0]!.GetValue<double>(), p[1]!.GetValue<double>()));
                }
            }
            return list;
        }
    }
}
