using System.Collections.Concurrent;
using System.Net;
using Ambient.Mesh.Governance;
using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;
using Ambient.Waypoint.Governance;
using Ambient.Waypoint.Routing;
using Ambient.Waypoint.Tests.Support;
using Backend = Ambient.Waypoint.Routing.Backend;
using Microsoft.Extensions.Time.Testing;

namespace Ambient.Waypoint.Tests.Governance;

/// <summary>The retry loop against scripted upstreams: which ends are retried, where, how often, and what is reported.</summary>
public sealed class RetryingHandlerTests
{
    private static readonly PickedEndpoint A = Endpoint("a", 1);
    private static readonly PickedEndpoint B = Endpoint("b", 2);

    /// <summary>An upstream answer: a status, or a failure.</summary>
    public enum UpstreamStep
    {
        Ok,
        Status503,
        Status404,
        Status409,
        Status418,
        ConnectFailure,
        Reset,
        GrpcUnavailable,
    }

    public static TheoryData<string, string, UpstreamStep[], int, int, bool> Cases => new()
    {
        // name, retryOn, upstream script, attempts, expected sends, expected exhausted (URX)
        { "5xx retried then succeeds", "5xx", [UpstreamStep.Status503, UpstreamStep.Ok], 2, 2, false },
        { "5xx exhausted", "5xx", [UpstreamStep.Status503, UpstreamStep.Status503, UpstreamStep.Status503], 2, 3, true },
        { "404 is not a 5xx", "5xx", [UpstreamStep.Status404], 2, 1, false },
        { "gateway-error covers 503", "gateway-error", [UpstreamStep.Status503, UpstreamStep.Ok], 1, 2, false },
        { "connect-failure only: 503 answered", "connect-failure", [UpstreamStep.Status503], 3, 1, false },
        { "connect-failure retried", "connect-failure", [UpstreamStep.ConnectFailure, UpstreamStep.Ok], 3, 2, false },
        { "reset retried under 5xx", "5xx", [UpstreamStep.Reset, UpstreamStep.Ok], 1, 2, false },
        { "reset not retried under connect-failure", "connect-failure", [UpstreamStep.Reset], 3, 1, false },
        { "retriable-4xx is 409", "retriable-4xx", [UpstreamStep.Status409, UpstreamStep.Ok], 1, 2, false },
        { "status code listed", "418", [UpstreamStep.Status418, UpstreamStep.Ok], 1, 2, false },
        { "grpc unavailable", "unavailable", [UpstreamStep.GrpcUnavailable, UpstreamStep.Ok], 1, 2, false },
        { "attempts 0 never retries", "5xx", [UpstreamStep.Status503], 0, 1, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task RetriesWhatTheConditionsSay(string name, string retryOn, UpstreamStep[] script, int attempts, int sends, bool exhausted)
    {
        var policy = RetryPolicy.From(new HttpRetry { Attempts = attempts, RetryOn = [.. retryOn.Split(',')] }) with { BaseInterval = TimeSpan.FromMilliseconds(1) };
        var upstream = new ScriptedUpstream(script);
        var plan = new AttemptPlan(policy, A, avoid => avoid.Contains("a") ? B : A);
        var (response, error) = await SendAsync(upstream, plan, new FakeTimeProvider());
        Assert.True(upstream.Sends.Count == sends, $"{name}: {upstream.Sends.Count} sends");
        Assert.Equal(exhausted, plan.Exhausted);
        Assert.Equal(sends - 1, plan.Retries);
        var last = script[sends - 1];
        if (last is UpstreamStep.ConnectFailure or UpstreamStep.Reset)
        {
            Assert.NotNull(error);
        }
        else
        {
            Assert.NotNull(response);
        }
    }

    [Fact]
    public async Task ARetryGoesToAnotherEndpointWhenThereIsOneAndCarriesTheBody()
    {
        var policy = RetryPolicy.From(new HttpRetry { Attempts = 2, RetryOn = ["5xx"] }) with { BaseInterval = TimeSpan.FromMilliseconds(1) };
        var upstream = new ScriptedUpstream([UpstreamStep.Status503, UpstreamStep.Ok]);
        var plan = new AttemptPlan(policy, A, avoid => avoid.Contains("a") ? B : A) { Body = "hello"u8.ToArray() };
        var (response, _) = await SendAsync(upstream, plan, new FakeTimeProvider(), body: "hello");
        Assert.Equal(HttpStatusCode.OK, response!.StatusCode);
        Assert.Equal(["127.0.0.1:1", "127.0.0.1:2"], upstream.Sends);
        Assert.Equal(["hello", "hello"], upstream.Bodies);
        Assert.Equal(B, plan.Current);
    }

    [Fact]
    public async Task ABodyThatWasNotKeptIsNotSentTwice()
    {
        var policy = RetryPolicy.From(new HttpRetry { Attempts = 2, RetryOn = ["5xx"] });
        var upstream = new ScriptedUpstream([UpstreamStep.Status503, UpstreamStep.Ok]);
        var plan = new AttemptPlan(policy, A, _ => B) { CanResend = false };
        var (response, _) = await SendAsync(upstream, plan, new FakeTimeProvider(), body: "streamed");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response!.StatusCode);
        Assert.Single(upstream.Sends);
        Assert.False(plan.Exhausted);
    }

    [Fact]
    public async Task PerTryTimeoutEndsAnAttemptAndTheNextOneAnswers()
    {
        var time = new FakeTimeProvider();
        var policy = RetryPolicy.From(new HttpRetry { Attempts = 1, RetryOn = ["5xx"], PerTryTimeout = TimeSpan.FromSeconds(2) }) with { BaseInterval = TimeSpan.FromMilliseconds(1) };
        var hang = new TaskCompletionSource();
        var upstream = new ScriptedUpstream([UpstreamStep.Ok, UpstreamStep.Ok]) { HoldFirst = hang.Task };
        var plan = new AttemptPlan(policy, A, _ => B);
        var send = SendAsync(upstream, plan, time, random: new ZeroRandom());
        await TestWait.UntilAsync(() => upstream.Sends.Count == 1, "first attempt sent");
        time.Advance(TimeSpan.FromSeconds(2));
        var (response, _) = await send.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, response!.StatusCode);
        Assert.Equal(2, upstream.Sends.Count);
        Assert.False(plan.TimedOut);
    }

    [Fact]
    public async Task PerTryTimeoutOnTheLastAttemptIsReportedAsTimedOutAndExhausted()
    {
        var time = new FakeTimeProvider();
        var policy = RetryPolicy.From(new HttpRetry { Attempts = 0, RetryOn = ["5xx"], PerTryTimeout = TimeSpan.FromSeconds(1) });
        policy = policy with { Attempts = 0, PerTryTimeout = TimeSpan.FromSeconds(1) };
        var upstream = new ScriptedUpstream([UpstreamStep.Ok]) { HoldFirst = new TaskCompletionSource().Task };
        var plan = new AttemptPlan(policy, A, _ => B);
        var send = SendAsync(upstream, plan, time);
        await TestWait.UntilAsync(() => upstream.Sends.Count == 1, "attempt sent");
        time.Advance(TimeSpan.FromSeconds(1));
        var (_, error) = await send.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.NotNull(error);
        Assert.True(plan.TimedOut);
    }

    [Fact]
    public async Task MaxRetriesBoundsRetriesInFlight()
    {
        var time = new FakeTimeProvider();
        var backend = new Backend(Service(), 80, null, null);
        var destination = new DestinationGovernance(backend, new TrafficPolicy { ConnectionPool = new ConnectionPoolSettings(null, new HttpSettings { MaxRetries = 1 }) }, time);
        Assert.True(destination.TryStartRetry());
        var policy = RetryPolicy.From(new HttpRetry { Attempts = 3, RetryOn = ["5xx"] });
        var upstream = new ScriptedUpstream([UpstreamStep.Status503, UpstreamStep.Ok]);
        var plan = new AttemptPlan(policy, A, _ => B) { Destination = destination };
        var (response, _) = await SendAsync(upstream, plan, time);
        // The one retry slot is taken: the first answer stands, flagged as retries exhausted (overflow).
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response!.StatusCode);
        Assert.True(plan.Exhausted);
        destination.RetryEnded();
        Assert.Equal(1, destination.Breaker.Retries.Remaining);
    }

    [Fact]
    public async Task AttemptsAreReportedToOutlierDetection()
    {
        var time = new FakeTimeProvider();
        var backend = new Backend(Service(), 80, null, null);
        var destination = new DestinationGovernance(backend, new TrafficPolicy { OutlierDetection = new OutlierDetection { Consecutive5xxErrors = 2, MaxEjectionPercent = 100 } }, time);
        destination.Outliers!.SetHosts(["a", "b"]);
        var policy = RetryPolicy.From(new HttpRetry { Attempts = 0 });
        for (int i = 0; i < 2; i++)
        {
            var plan = new AttemptPlan(policy, A, _ => B) { Destination = destination };
            await SendAsync(new ScriptedUpstream([UpstreamStep.Status503]), plan, time);
        }
        Assert.True(destination.Outliers.IsEjected("a"));
        Assert.False(destination.Outliers.IsEjected("b"));
    }

    private static async Task<(HttpResponseMessage? Response, Exception? Error)> SendAsync(ScriptedUpstream upstream, AttemptPlan plan, TimeProvider time, string? body = null, Random? random = null)
    {
        var state = new GovernanceState(time);
        using var invoker = new HttpMessageInvoker(new RetryingHandler(state, () => random ?? new ZeroRandom()) { InnerHandler = upstream });
        using var request = new HttpRequestMessage(body is null ? HttpMethod.Get : HttpMethod.Post, "http://127.0.0.1:1/x");
        if (body is not null)
        {
            request.Content = new StringContent(body);
        }
        request.Options.Set(AttemptPlan.Key, plan);
        try
        {
            return (await invoker.SendAsync(request, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10)), null);
        }
        catch (HttpRequestException ex)
        {
            return (null, ex);
        }
    }

    private static Service Service() => new() { Name = "echo", Namespace = "shop", Hostname = "echo.shop.svc.cluster.local" };

    private static PickedEndpoint Endpoint(string uid, int port) =>
        new(new Workload { Uid = uid, Name = uid, Namespace = "shop" }, IPAddress.Loopback, port, null);

    private sealed class ZeroRandom : Random
    {
        public override double NextDouble() => 0;
    }

    private sealed class ScriptedUpstream(UpstreamStep[] script) : HttpMessageHandler
    {
        public ConcurrentQueue<string> SendsQueue { get; } = new();

        public List<string> Sends => [.. SendsQueue];

        public List<string> Bodies { get; } = [];

        public Task? HoldFirst { get; init; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            int n = SendsQueue.Count;
            if (request.Content is { } content)
            {
                Bodies.Add(await content.ReadAsStringAsync(cancellationToken));
            }
            SendsQueue.Enqueue($"{request.RequestUri!.Host}:{request.RequestUri.Port}");
            if (n == 0 && HoldFirst is { } hold)
            {
                await hold.WaitAsync(cancellationToken);
            }
            return script[n] switch
            {
                UpstreamStep.Ok => new HttpResponseMessage(HttpStatusCode.OK),
                UpstreamStep.Status503 => new HttpResponseMessage(HttpStatusCode.ServiceUnavailable),
                UpstreamStep.Status404 => new HttpResponseMessage(HttpStatusCode.NotFound),
                UpstreamStep.Status409 => new HttpResponseMessage(HttpStatusCode.Conflict),
                UpstreamStep.Status418 => new HttpResponseMessage((HttpStatusCode)418),
                UpstreamStep.GrpcUnavailable => new HttpResponseMessage(HttpStatusCode.OK) { Headers = { { "grpc-status", "14" } } },
                UpstreamStep.ConnectFailure => throw new HttpRequestException(HttpRequestError.ConnectionError, "connection refused"),
                _ => throw new HttpRequestException(HttpRequestError.ResponseEnded, "reset before headers"),
            };
        }
    }
}
