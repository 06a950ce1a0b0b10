using System.Net;
using Ambient.OtlpReceiver.Proto.Collector.Trace.V1;
using Ambient.OtlpReceiver.Proto.Common.V1;
using Ambient.OtlpReceiver.Proto.Resource.V1;
using Ambient.OtlpReceiver.Proto.Trace.V1;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ambient.OtlpReceiver;

/// <summary>One span as received, with the resource and scope it came under and the protocol that carried it.</summary>
internal sealed record ReceivedSpan(string Protocol, Resource Resource, InstrumentationScope Scope, Span Span)
{
    public string TraceId => Convert.ToHexStringLower(Span.TraceId.Span);
    public string SpanId => Convert.ToHexStringLower(Span.SpanId.Span);
    public string ParentSpanId => Convert.ToHexStringLower(Span.ParentSpanId.Span);
    public string Name => Span.Name;
    public Span.Types.SpanKind Kind => Span.Kind;

    /// <summary>An attribute's value as text, or null.</summary>
    public string? Attribute(string key) => Find(Span.Attributes, key);

    public string? ResourceAttribute(string key) => Find(Resource.Attributes, key);

    private static string? Find(IEnumerable<KeyValue> attributes, string key)
    {
        foreach (var kv in attributes)
        {
            if (kv.Key == key)
            {
                return kv.Value?.ValueCase switch
                {
                    AnyValue.ValueOneofCase.StringValue => kv.Value.StringValue,
                    AnyValue.ValueOneofCase.IntValue => kv.Value.IntValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    AnyValue.ValueOneofCase.BoolValue => kv.Value.BoolValue ? "true" : "false",
                    AnyValue.ValueOneofCase.DoubleValue => kv.Value.DoubleValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    _ => kv.Value?.ToString(),
                };
            }
        }
        return null;
    }
}

/// <summary>
/// An OTLP trace receiver: <c>POST /v1/traces</c> (HTTP/protobuf, <c>application/x-protobuf</c>) on one port and the
/// gRPC <c>opentelemetry.proto.collector.trace.v1.TraceService/Export</c> (HTTP/2 cleartext) on another. Requests
/// are decoded by the code Grpc.Tools generates from the OTLP .proto files; every span is kept in arrival order.
/// </summary>
internal sealed class OtlpCollector : IAsyncDisposable
{
    private readonly List<ReceivedSpan> _spans = [];
    private readonly WebApplication _app;
    private ListenOptions? _http;
    private ListenOptions? _grpc;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private OtlpCollector(IPAddress address, int httpPort, int grpcPort)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "otlp-receiver", Args = [] });
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(this);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(address, httpPort, l => { l.Protocols = HttpProtocols.Http1AndHttp2; _http = l; });
            k.Listen(address, grpcPort, l => { l.Protocols = HttpProtocols.Http2; _grpc = l; });
        });
        _app = builder.Build();
        _app.MapPost("/v1/traces", ExportHttpAsync);
        _app.MapGrpcService<TraceReceiver>();
    }

    /// <summary>Starts listening; port 0 takes a free port.</summary>
    public static async Task<OtlpCollector> StartAsync(IPAddress address, int httpPort = 0, int grpcPort = 0)
    {
        var collector = new OtlpCollector(address, httpPort, grpcPort);
        try
        {
            await collector._app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            return collector;
        }
        catch
        {
            await collector.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The OTLP/HTTP traces URL (what <c>OTEL_EXPORTER_OTLP_TRACES_ENDPOINT</c> takes).</summary>
    public Uri HttpEndpoint => new($"http://{Format(_http!.IPEndPoint!)}/v1/traces");

    /// <summary>The OTLP/gRPC endpoint.</summary>
    public Uri GrpcEndpoint => new($"http://{Format(_grpc!.IPEndPoint!)}");

    /// <summary>Export requests received, by protocol ("http", "grpc").</summary>
    public int HttpRequests { get; private set; }

    public int GrpcRequests { get; private set; }

    /// <summary>Called with each request's spans as they arrive (the command line prints them).</summary>
    public event Action<IReadOnlyList<ReceivedSpan>>? Received;

    public IReadOnlyList<ReceivedSpan> Spans
    {
        get
        {
            lock (_spans)
            {
                return [.. _spans];
            }
        }
    }

    /// <summary>Waits until <paramref name="done"/> holds for the spans received so far.</summary>
    public async Task<IReadOnlyList<ReceivedSpan>> WaitAsync(Func<IReadOnlyList<ReceivedSpan>, bool> done, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            Task changed;
            lock (_spans)
            {
                changed = _changed.Task;
            }
            var spans = Spans;
            if (done(spans))
            {
                return spans;
            }
            try
            {
                await changed.WaitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"the OTLP receiver did not get the expected spans within {timeout.TotalSeconds} s; it has {spans.Count}:\n{SpanTree.Render(spans)}");
            }
        }
    }

    internal void Add(ExportTraceServiceRequest request, string protocol)
    {
        var added = new List<ReceivedSpan>();
        foreach (var rs in request.ResourceSpans)
        {
            foreach (var ss in rs.ScopeSpans)
            {
                foreach (var span in ss.Spans)
                {
                    added.Add(new ReceivedSpan(protocol, rs.Resource ?? new Resource(), ss.Scope ?? new InstrumentationScope(), span));
                }
            }
        }
        TaskCompletionSource changed;
        lock (_spans)
        {
            _spans.AddRange(added);
            if (protocol == "grpc")
            {
                GrpcRequests++;
            }
            else
            {
                HttpRequests++;
            }
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
        Received?.Invoke(added);
    }

    private async Task ExportHttpAsync(HttpContext context)
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted).ConfigureAwait(false);
        ExportTraceServiceRequest request;
        try
        {
            request = ExportTraceServiceRequest.Parser.ParseFrom(body.ToArray());
        }
        catch (InvalidProtocolBufferException ex)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync(ex.Message, context.RequestAborted).ConfigureAwait(false);
            return;
        }
        Add(request, "http");
        context.Response.ContentType = "application/x-protobuf";
        await context.Response.Body.WriteAsync(new ExportTraceServiceResponse().ToByteArray(), context.RequestAborted).ConfigureAwait(false);
    }

    private static string Format(IPEndPoint ep) => ep.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ep.Address}]:{ep.Port}" : ep.ToString();

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException or InvalidOperationException)
        {
        }
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The gRPC side: the generated service base does the framing and decoding.</summary>
    private sealed class TraceReceiver(OtlpCollector collector) : TraceService.TraceServiceBase
    {
        public override Task<ExportTraceServiceResponse> Export(ExportTraceServiceRequest request, ServerCallContext context)
        {
            collector.Add(request, "grpc");
            return Task.FromResult(new ExportTraceServiceResponse());
        }
    }
}
