using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Ambient.OtlpReceiver;

// otlp-receiver [--address 127.0.0.1] [--http 4318] [--grpc 4317] [--spans N] [--timeout SECONDS]
// Receives OTLP traces and, on exit (N spans received, the timeout, SIGINT or SIGTERM), prints one tree per trace.
var address = IPAddress.Loopback;
int http = 4318, grpc = 4317, wantSpans = 0;
double timeout = 0;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--address": address = IPAddress.Parse(Next()); break;
        case "--http": http = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--grpc": grpc = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--spans": wantSpans = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--timeout": timeout = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "-h" or "--help":
            Console.WriteLine("otlp-receiver [--address 127.0.0.1] [--http 4318] [--grpc 4317] [--spans N] [--timeout SECONDS]\n"
                + "Receives OTLP traces (HTTP/protobuf POST /v1/traces, gRPC TraceService/Export) and prints the span trees on exit.");
            return 0;
        default:
            Console.Error.WriteLine($"otlp-receiver: unknown argument {args[i]} (try --help)");
            return 2;
    }
}

await using var collector = await OtlpCollector.StartAsync(address, http, grpc);
Console.Error.WriteLine($"otlp-receiver: OTLP/HTTP {collector.HttpEndpoint}  OTLP/gRPC {collector.GrpcEndpoint}");
using var stop = new CancellationTokenSource();
if (timeout > 0)
{
    stop.CancelAfter(TimeSpan.FromSeconds(timeout));
}
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
collector.Received += batch =>
{
    if (wantSpans > 0 && collector.Spans.Count >= wantSpans)
    {
        stop.Cancel();
    }
};
try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
}
var spans = collector.Spans;
Console.Write(SpanTree.Render(spans));
Console.Error.WriteLine($"otlp-receiver: {spans.Count} span(s) in {spans.Select(s => s.TraceId).Distinct().Count()} trace(s)");
return 0;
