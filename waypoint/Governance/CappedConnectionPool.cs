using System.Net;

namespace Ambient.Waypoint.Governance;

/// <summary>
/// Upstream connections that each carry at most N requests (DestinationRule <c>http.maxRequestsPerConnection</c>
/// above 1), for HTTP/1.1 and HTTP/2 alike. The framework's pool does not say which connection a request used, so
/// this pool owns its connections: each "lane" is a handler allowed one connection per endpoint, and requests are
/// counted per lane. The lane that reaches N takes no more requests; once its last response is done it is disposed,
/// which closes its connection (Envoy drains and closes a connection at its limit the same way). An HTTP/1.1 lane
/// carries one request at a time, and the Nth goes out with <c>Connection: close</c>, so the backend sees the end
/// too; an HTTP/2 lane multiplexes until its Nth stream.
/// </summary>
/// <remarks>
/// A "connection" here is what the backend sees as one: one HBONE tunnel (one CONNECT stream to the pod, with the
/// HTTP/1.1 or HTTP/2 connection inside it). The mTLS connections to the pods' 15008 under the tunnels are
/// HbonePool's and stay shared. A lane whose connection the backend closed early reconnects on its next request and
/// keeps counting, so a connection carries at most N, never more.
/// </remarks>
internal sealed class CappedConnectionPool(int maxRequests, Func<HttpMessageHandler> newLane) : IDisposable
{
    private sealed class Lane(HttpMessageInvoker invoker)
    {
        public HttpMessageInvoker Invoker { get; } = invoker;
        public int Sent;
        public int InFlight;
        public bool Retired;
    }

    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<Lane>> _lanes = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>Retired lanes whose last responses are still being read.</summary>
    private int _finishing;

    public int MaxRequests => maxRequests;

    /// <summary>Lanes open now, retired ones still finishing included (tests).</summary>
    internal int OpenLanes
    {
        get
        {
            lock (_gate)
            {
                int n = 0;
                foreach (var list in _lanes.Values)
                {
                    n += list.Count;
                }
                return n + _finishing;
            }
        }
    }

    public async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        bool multiplexed = request.Version >= HttpVersion.Version20;
        string key = $"{request.RequestUri!.Authority}|{(multiplexed ? "h2" : "h1")}";
        Lane lane;
        bool last;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_lanes.TryGetValue(key, out var list))
            {
                list = [];
                _lanes[key] = list;
            }
            Lane? found = null;
            foreach (var l in list)
            {
                // HTTP/1.1 carries one request at a time: a busy lane would only queue this one behind another.
                if (multiplexed || l.InFlight == 0)
                {
                    found = l;
                    break;
                }
            }
            if (found is null)
            {
#pragma warning disable CA2000 // the lane owns it; disposed when the lane retires or with this pool
                found = new Lane(new HttpMessageInvoker(newLane(), disposeHandler: true));
#pragma warning restore CA2000
                list.Add(found);
            }
            lane = found;
            lane.Sent++;
            lane.InFlight++;
            last = lane.Sent >= maxRequests;
            if (last)
            {
                list.Remove(lane);
                if (list.Count == 0)
                {
                    _lanes.Remove(key);
                }
                lane.Retired = true;
                _finishing++;
            }
        }
        if (last && !multiplexed)
        {
            request.Headers.ConnectionClose = true;
        }
        HttpResponseMessage response;
        try
        {
            response = await lane.Invoker.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Release(lane);
            throw;
        }
        if (request.Method == HttpMethod.Head || response.StatusCode is HttpStatusCode.NoContent or HttpStatusCode.NotModified
            || response.Content.Headers.ContentLength == 0)
        {
            // No body follows: the connection is free already, and nobody may read or dispose an empty body.
            Release(lane);
            return response;
        }
        // The connection is busy until the response body is done with: read to its end, or its stream or the response
        // disposed (the forwarder disposes the body stream it copied, not always the response).
        response.Content = new ReleasingContent(response.Content, () => Release(lane));
        return response;
    }

    private void Release(Lane lane)
    {
        bool dispose;
        lock (_gate)
        {
            lane.InFlight--;
            dispose = lane.Retired && lane.InFlight == 0;
            if (dispose)
            {
                _finishing--;
            }
        }
        if (dispose)
        {
            lane.Invoker.Dispose();
        }
    }

    public void Dispose()
    {
        List<Lane> all;
        lock (_gate)
        {
            _disposed = true;
            all = [.. _lanes.Values.SelectMany(l => l)];
            _lanes.Clear();
        }
        foreach (var lane in all)
        {
            lane.Invoker.Dispose();
        }
    }

    /// <summary>
    /// The response's content, unchanged, that gives its lane's slot back (once) when it is disposed, or its stream is
    /// read to the end or disposed.
    /// </summary>
    private sealed class ReleasingContent : HttpContent
    {
        private readonly HttpContent _inner;
        private Action? _release;

        public ReleasingContent(HttpContent inner, Action release)
        {
            _inner = inner;
            _release = release;
            foreach (var header in inner.Headers)
            {
                Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => _inner.CopyToAsync(stream);

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
            _inner.CopyToAsync(stream, cancellationToken);

        protected override async Task<Stream> CreateContentReadStreamAsync() =>
            new ReleasingStream(await _inner.ReadAsStreamAsync().ConfigureAwait(false), Release);

        protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
            new ReleasingStream(await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), Release);

        protected override Stream CreateContentReadStream(CancellationToken cancellationToken) =>
            new ReleasingStream(_inner.ReadAsStream(cancellationToken), Release);

        private void Release() => Interlocked.Exchange(ref _release, null)?.Invoke();

        protected override bool TryComputeLength(out long length)
        {
            length = _inner.Headers.ContentLength ?? 0;
            return _inner.Headers.ContentLength is not null;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
                Release();
            }
            base.Dispose(disposing);
        }
    }

    /// <summary>A read-only body stream that calls back at its end (a read of 0 bytes) or when disposed.</summary>
    private sealed class ReleasingStream(Stream inner, Action release) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Ended(inner.Read(buffer, offset, count), count);

        public override int Read(Span<byte> buffer) => Ended(inner.Read(buffer), buffer.Length);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Ended(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false), buffer.Length);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                release();
            }
            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync().ConfigureAwait(false);
            release();
            await base.DisposeAsync().ConfigureAwait(false);
        }

        private int Ended(int read, int asked)
        {
            // A zero-byte read asked for nothing; only an empty answer to a real read is the end of the body.
            if (read == 0 && asked > 0)
            {
                release();
            }
            return read;
        }
    }
}
