using System.IO.Pipelines;
using System.Net;
using Ambient.Mesh.Http2;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Ambient.Waypoint.Hbone;

/// <summary>
/// One accepted CONNECT stream as a Kestrel connection. Kestrel reads the stream's DATA straight from its
/// <see cref="Http2Stream.Input"/> pipe; what Kestrel writes goes through a bounded pipe to the stream's DATA frames
/// (the pause threshold bounds what a slow client can make us buffer). The stream's end (END_STREAM both ways, or a
/// reset) is the connection's end.
/// </summary>
internal sealed class HboneConnection : ConnectionContext, IConnectionLifetimeFeature, IConnectionEndPointFeature
{
    private static long s_ids;
    private static readonly TimeSpan AbortFlushGrace = TimeSpan.FromSeconds(2);
    private readonly Http2Stream _stream;
    // The pump runs on the thread that flushed (Kestrel's, finishing a response): a hop to the thread pool here was one
    // more wake-up per response at interactive rates. The stream's own write path decides whether a large flush is
    // handed off (HandOffScheduler).
    private readonly Pipe _output = new(new PipeOptions(readerScheduler: PipeScheduler.Inline, pauseWriterThreshold: 256 * 1024, resumeWriterThreshold: 128 * 1024, useSynchronizationContext: false));
    private readonly CancellationTokenSource _closed = new();
    private readonly Task _pump;
    private int _disposed;
    private int _aborted;

    public HboneConnection(Http2Stream stream, TunnelInfo tunnel, IPEndPoint local)
    {
        _stream = stream;
        Tunnel = tunnel;
        ConnectionId = $"hbone-{Interlocked.Increment(ref s_ids)}";
        LocalEndPoint = local;
        RemoteEndPoint = tunnel.Client;
        Transport = new DuplexPipe(stream.Input, _output.Writer);
        Features.Set<IConnectionLifetimeFeature>(this);
        Features.Set<IConnectionEndPointFeature>(this);
        Features.Set(tunnel);
        _pump = PumpAsync();
        // A reset by the peer (or the HBONE connection going away) ends what Kestrel is doing on this connection.
        _ = stream.Completion.ContinueWith(static (_, s) => ((HboneConnection)s!).SignalClosed(), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    public TunnelInfo Tunnel { get; }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; } = new FeatureCollection();

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    public override IDuplexPipe Transport { get; set; }

    public override CancellationToken ConnectionClosed
    {
        get => _closed.Token;
        set => throw new NotSupportedException();
    }

    public override EndPoint? LocalEndPoint { get; set; }

    public override EndPoint? RemoteEndPoint { get; set; }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }
        // What Kestrel wrote before aborting is still in the output pipe: the GOAWAY (ENHANCE_YOUR_CALM) that ends an
        // HTTP/2 connection it cut for abuse such as rapid reset, the end of an HTTP/1.1 error response. The pump
        // delivers it and ends the stream; only a client that will not take it (flow control closed) gets a reset
        // without it, after a grace period, so an aborted connection never lingers.
        _output.Reader.CancelPendingRead();
        SignalClosed();
        _ = ResetAfterFlushAsync();
    }

    private async Task ResetAfterFlushAsync()
    {
        try
        {
            await _pump.WaitAsync(AbortFlushGrace).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        _stream.Reset(Http2ErrorCode.Cancel);
    }

    public override void Abort() => Abort(new ConnectionAbortedException("aborted"));

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            await base.DisposeAsync().ConfigureAwait(false);
            return;
        }
        await _output.Writer.CompleteAsync().ConfigureAwait(false);
        await _pump.ConfigureAwait(false);
        // Kestrel is done with the connection: if the client has not ended its side, free the stream rather than
        // keep it (and a slot of the client's stream limit) open.
        _stream.Reset(Http2ErrorCode.NoError);
        SignalClosed();
        _closed.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }

    private void SignalClosed()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Copies what Kestrel wrote to the stream's DATA frames; END_STREAM when Kestrel completes its output.</summary>
    private async Task PumpAsync()
    {
        var reader = _output.Reader;
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                foreach (var segment in buffer)
                {
                    await _stream.WriteAsync(segment, CancellationToken.None).ConfigureAwait(false);
                }
                reader.AdvanceTo(buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
            await _stream.CompleteWritesAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is Http2StreamException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            error = ex;
            SignalClosed();
        }
        await reader.CompleteAsync(error).ConfigureAwait(false);
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
