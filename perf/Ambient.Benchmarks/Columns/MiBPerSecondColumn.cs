using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Ambient.Benchmarks.Columns;

/// <summary>
/// Throughput for benchmarks whose operation is one MiB (they set <c>OperationsPerInvoke</c> to the MiB they move):
/// MiB/s = 1 s / mean time per operation. The Allocated column of such a benchmark is then bytes per MiB.
/// </summary>
public sealed class MiBPerSecondColumn : IColumn
{
    public string Id => nameof(MiBPerSecondColumn);
    public string ColumnName => "MiB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Throughput: mebibytes copied per second, from the mean time per MiB";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        double? meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
        return meanNs is > 0 ? (1e9 / meanNs.Value).ToString("N0", style.CultureInfo) : "NA";
    }

    public bool IsAvailable(Summary summary) => true;

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    /// <summary>Adds the column to the class it is applied to (<c>[Config(typeof(MiBPerSecondColumn.Config))]</c>).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1034", Justification = "BenchmarkDotNet's [Config(typeof(...))] reads best as MiBPerSecondColumn.Config")]
    public sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new MiBPerSecondColumn());
    }
}
