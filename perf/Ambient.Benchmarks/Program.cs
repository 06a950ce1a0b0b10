using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Ambient.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project perf/Ambient.Benchmarks -- --filter '*'</c> runs the suite; any other
/// BenchmarkDotNet option works (<c>--job short</c>, <c>--list flat</c>, <c>--filter '*Relay*'</c>).
/// <c>--validate</c> is <c>--job dry --filter '*'</c> plus <c>--inProcess</c>: every benchmark once, to prove it
/// still runs (CI). In-process skips BenchmarkDotNet's second build of a generated project, which on a cold 2-core
/// runner is most of the time budget. Exits non-zero when a benchmark fails (its setup threw or its process
/// crashed), never on timings.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        if (args is ["--kube-object-memory"])
        {
            return Kubernetes.KubeObjectMemory.Run();
        }
        bool validate = args.Contains("--validate");
        if (validate)
        {
            var expanded = args.Where(a => a != "--validate").ToList();
            if (!expanded.Contains("--job") && !expanded.Contains("-j"))
            {
                expanded.AddRange(["--job", "dry"]);
            }
            if (!expanded.Contains("--inProcess") && !expanded.Contains("-i"))
            {
                expanded.Add("--inProcess");
            }
            if (!expanded.Contains("--filter") && !expanded.Contains("-f"))
            {
                expanded.AddRange(["--filter", "*"]);
            }
            args = [.. expanded];
        }

        // Median next to Mean: on a shared 2-core box a few slow iterations move the mean, not the median.
        IConfig config = ManualConfig.Create(DefaultConfig.Instance).AddColumn(StatisticColumn.Median);
        Summary[] summaries = [.. BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config)];
        int failed = 0;
        foreach (Summary summary in summaries)
        {
            if (summary.HasCriticalValidationErrors)
            {
                Console.Error.WriteLine($"benchmarks: {summary.Title}: invalid benchmark definition (see the validation errors above)");
                failed++;
            }
            foreach (BenchmarkReport report in summary.Reports)
            {
                if (!report.Success)
                {
                    Console.Error.WriteLine($"benchmarks: {report.BenchmarkCase.DisplayInfo} failed (see its log above)");
                    failed++;
                }
            }
        }
        if (validate && summaries.Length == 0)
        {
            Console.Error.WriteLine("benchmarks: --validate ran nothing; check the --filter expression");
            return 1;
        }
        return failed == 0 ? 0 : 1;
    }
}
