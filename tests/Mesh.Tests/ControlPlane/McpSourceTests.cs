using System.Net;
using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Sources;
using Ambient.Mesh.Sources.Mcp;
using Ambient.Mesh.Tests.ControlPlane.Support;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Pn = Ambient.Mesh.Protos.Istio.Networking;

namespace Ambient.Mesh.Tests.ControlPlane;

/// <summary>
/// MCP registries as mesh sources against in-process MCP servers (<see cref="FakeMcpServer"/>) over the real protocol:
/// state-of-the-world ADS on HTTP/2, istio.mcp.v1alpha1.Resource around Istio's ServiceEntry and WorkloadEntry.
/// </summary>
public sealed class McpSourceTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    internal const string ServiceEntryType = "networking.istio.io/v1/ServiceEntry";
    internal const string WorkloadEntryType = "networking.istio.io/v1/WorkloadEntry";

    /// <summary>A MESH_INTERNAL STATIC entry for one host with a VIP, port 80 to <paramref name="target"/>, and its endpoints.</summary>
    internal static Pn.ServiceEntry Entry(string host, IPAddress vip, uint target, params IPAddress[] endpoints)
    {
        var se = new Pn.ServiceEntry
        {
            Hosts = { host },
            Addresses = { vip.ToString() },
            Ports = { new Pn.ServicePort { Number = 80, Name = "tcp", Protocol = "TCP", TargetPort = target } },
            Location = Pn.ServiceEntry.Types.Location.MeshInternal,
            Resolution = Pn.ServiceEntry.Types.Resolution.Static,
        };
        foreach (IPAddress ip in endpoints)
        {
            se.Endpoints.Add(new Pn.WorkloadEntry { Address = ip.ToString(), ServiceAccount = "echo", Labels = { ["istio.io/dataplane-mode"] = "ambient" } });
        }
        return se;
    }

    private static (McpSource Source, MeshStore Store) Start(
        MeshStore? store, FakeMcpServer server, string name, int precedence, TimeProvider? time = null, string version = "v1", TimeSpan? staleAfter = null, ILogger? logger = null)
    {
        store ??= new MeshStore(NullLogger<MeshStore>.Instance);
        var options = new McpRegistryOptions
        {
            Name = name,
            Address = server.Url,
            Precedence = precedence,
            ApiVersion = version,
            StaleAfter = staleAfter ?? McpRegistryOptions.DefaultStaleAfter,
        };
        var source = new McpSource(store, options, new ControlPlaneConnection(server.Url, null, null, "Kubernetes"), new KubeTranslator(), logger ?? NullLogger.Instance, time: time)
        {
            Backoff = new Backoff(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(100)),
        };
        return (source, store);
    }

    private static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        long deadline = Environment.TickCount64 + (long)Timeout.TotalMilliseconds;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, $"timed out waiting for: {what}");
            await Task.Delay(10);
        }
    }

    private static IPAddress Ip(int block, int last) => IPAddress.Parse($"127.64.{block}.{last}");

    [Fact]
    public async Task A_registry_snapshot_becomes_services_and_workloads_and_what_it_leaves_out_is_withdrawn()
    {
        await using var server = await FakeMcpServer.StartAsync();
        server.Set(ServiceEntryType, "shop/echo", Entry("echo.shop.registry", Ip(1, 100), 8080, Ip(1, 20), Ip(1, 21)));
        server.Set(WorkloadEntryType, "shop/vm-1", new Pn.WorkloadEntry { Address = Ip(1, 30).ToString(), ServiceAccount = "vm" });
        var (source, store) = Start(null, server, "nacos", 25);
        await using (source)
        {
            await source.StartAsync(CancellationToken.None);
            await source.Source.Synced.WaitAsync(Timeout);

            var snapshot = store.Current;
            var service = snapshot.FindServiceByVip(Ip(1, 100));
            Assert.NotNull(service);
            Assert.Equal("shop/echo.shop.registry", service.Key);
            Assert.Equal(8080, service.Ports[80]);
            var endpoint = snapshot.FindWorkloadByIp(Ip(1, 20));
            Assert.NotNull(endpoint);
            Assert.Equal(8080, endpoint.Services["shop/echo.shop.registry"][80]);
            Assert.Equal(Model.InboundProtocol.Hbone, endpoint.Protocol);
            Assert.Equal("vm", snapshot.FindWorkloadByIp(Ip(1, 30))?.ServiceAccount);
            var status = Assert.Single(store.Sources, s => s.Name == "mcp:nacos");
            Assert.Equal((25, true, null), (status.Precedence, status.Synced, status.LastError));

            // The client asked for the v1 GVKs and ACKed each snapshot with its version and nonce.
            Assert.Contains(server.Requests, r => r.Request.TypeUrl == ServiceEntryType && r.Request.ResponseNonce.Length == 0);
            Assert.Contains(server.Requests, r => r.Request.TypeUrl == WorkloadEntryType && r.Request.ResponseNonce.Length == 0);
            await EventuallyAsync(() => server.Requests.Count(r => r.Request.ResponseNonce.Length > 0) >= 2, "two ACKs");
            Assert.All(server.Requests.Where(r => r.Request.ResponseNonce.Length > 0), r =>
            {
                Assert.Null(r.Request.ErrorDetail);
                Assert.StartsWith("v", r.Request.VersionInfo, StringComparison.Ordinal);
            });

            // A snapshot without an endpoint removes it; one without the entry removes the service.
            server.Set(ServiceEntryType, "shop/echo", Entry("echo.shop.registry", Ip(1, 100), 8080, Ip(1, 20)));
            await EventuallyAsync(() => store.Current.FindWorkloadByIp(Ip(1, 21)) is null, "endpoint .21 withdrawn");
            Assert.NotNull(store.Current.FindWorkloadByIp(Ip(1, 20)));
            server.Remove(ServiceEntryType, "shop/echo");
            await EventuallyAsync(() => store.Current.FindServiceByVip(Ip(1, 100)) is null, "service withdrawn");
            Assert.Null(store.Current.FindWorkloadByIp(Ip(1, 20)));
            Assert.NotNull(store.Current.FindWorkloadByIp(Ip(1, 30)));
            await source.StopAsync(CancellationToken.None).WaitAsync(Timeout);
        }
    }

    [Fact]
    public async Task Bad_resources_are_nacked_by_name_while_the_valid_ones_apply_and_a_refused_one_keeps_its_last_good_version()
    {
        await using var server = await FakeMcpServer.StartAsync();
        server.Set(ServiceEntryType, "shop/good", Entry("good.shop.registry", Ip(2, 100), 8080, Ip(2, 20)));
        server.Set(ServiceEntryType, "shop/changes", Entry("changes.shop.registry", Ip(2, 101), 8080, Ip(2, 21)));
        var (source, store) = Start(null, server, "nacos", 25);
        await using (source)
        {
            await source.StartAsync(CancellationToken.None);
            await source.Source.Synced.WaitAsync(Timeout);
            Assert.NotNull(store.Current.FindServiceByVip(Ip(2, 101)));

            // One snapshot with: a body of the wrong type, a name without a namespace, an entry whose endpoint address
            // is not an IP (STATIC), the changed entry now broken the same way, and a new valid entry.
            server.SetRaw(ServiceEntryType, "shop/wrong-type", FakeMcpServer.Wrap("shop/wrong-type", new Pn.WorkloadEntry { Address = "1.2.3.4" }));
            server.SetRaw(ServiceEntryType, "no-namespace", FakeMcpServer.Wrap("no-namespace", Entry("x.registry", Ip(2, 102), 80)));
            var badAddress = Entry("bad.shop.registry", Ip(2, 103), 8080);
            badAddress.Endpoints.Add(new Pn.WorkloadEntry { Address = "not-an-ip" });
            server.SetRaw(ServiceEntryType, "shop/bad", FakeMcpServer.Wrap("shop/bad", badAddress));
            var broken = Entry("changes.shop.registry", Ip(2, 101), 8080);
            broken.Endpoints.Add(new Pn.WorkloadEntry { Address = "also-not-an-ip" });
            server.SetRaw(ServiceEntryType, "shop/changes", FakeMcpServer.Wrap("shop/changes", broken, "broken"));
            server.Set(ServiceEntryType, "shop/new", Entry("new.shop.registry", Ip(2, 104), 8080, Ip(2, 24)));

            await EventuallyAsync(() => store.Current.FindServiceByVip(Ip(2, 104)) is not null, "the new valid entry applied");
            // Answers to the initial snapshot and the five pushes since; the last is the NACK of the whole set.
            await EventuallyAsync(() => server.Requests.Count(r => r.Request.TypeUrl == ServiceEntryType && r.Request.ResponseNonce.Length > 0) >= 6, "six answers");
            var nack = server.Requests.Last(r => r.Request.TypeUrl == ServiceEntryType && r.Request.ResponseNonce.Length > 0).Request;
            Assert.NotNull(nack.ErrorDetail);
            string error = nack.ErrorDetail.Message;
            Assert.Contains("ServiceEntry shop/wrong-type: the body is a istio.networking.v1alpha3.WorkloadEntry", error, StringComparison.Ordinal);
            Assert.Contains("ServiceEntry no-namespace: metadata.name 'no-namespace' is not 'namespace/name'", error, StringComparison.Ordinal);
            Assert.Contains("ServiceEntry shop/bad: spec.endpoints[0].address", error, StringComparison.Ordinal);
            Assert.Contains("ServiceEntry shop/changes: spec.endpoints[0].address", error, StringComparison.Ordinal);
            Assert.DoesNotContain("shop/good", error, StringComparison.Ordinal);
            Assert.DoesNotContain("shop/new", error, StringComparison.Ordinal);
            // A NACK carries the version last accepted, not the refused one.
            var ack = server.Requests.Last(r => r.Request.TypeUrl == ServiceEntryType && r.Request.ResponseNonce.Length > 0 && r.Request.ErrorDetail is null).Request;
            Assert.Equal(ack.VersionInfo, nack.VersionInfo);

            var snapshot = store.Current;
            Assert.NotNull(snapshot.FindServiceByVip(Ip(2, 100)));
            Assert.Null(snapshot.FindServiceByVip(Ip(2, 103)));
            // The refused change of shop/changes kept its last good version (its endpoint .21 is still there).
            Assert.NotNull(snapshot.FindWorkloadByIp(Ip(2, 21)));
            var status = Assert.Single(store.Sources, s => s.Name == "mcp:nacos");
            Assert.Contains("refused", status.LastError, StringComparison.Ordinal);
            Assert.Contains(status.Errors, e => e.StartsWith("ServiceEntry shop/bad:", StringComparison.Ordinal));
            Assert.True(source.Counters.Nacks > 0);
            await source.StopAsync(CancellationToken.None).WaitAsync(Timeout);
        }
    }

    [Fact]
    public async Task The_same_host_from_two_registries_is_taken_by_precedence_reported_and_handed_over_when_the_winner_drops_it()
    {
        await using var low = await FakeMcpServer.StartAsync();
        await using var high = await FakeMcpServer.StartAsync();
        low.Set(ServiceEntryType, "shop/echo", Entry("echo.shop.registry", Ip(3, 100), 8080, Ip(3, 20)));
        low.Set(ServiceEntryType, "shop/only-low", Entry("low.shop.registry", Ip(3, 101), 8080, Ip(3, 21)));
        high.Set(ServiceEntryType, "shop/echo", Entry("echo.shop.registry", Ip(3, 100), 9090, Ip(3, 30)));
        var log = new Http2.TestLogger();
        var store = new MeshStore(new LoggerOf<MeshStore>(log));
        // The lower one is added first: precedence, not order, decides.
        var (a, _) = Start(store, low, "consul", 10);
        var (b, _) = Start(store, high, "nacos", 25);
        await using (a)
        await using (b)
        {
            await a.StartAsync(CancellationToken.None);
            await b.StartAsync(CancellationToken.None);
            await a.Source.Synced.WaitAsync(Timeout);
            await b.Source.Synced.WaitAsync(Timeout);

            var service = store.Current.FindServiceByVip(Ip(3, 100));
            Assert.Equal(9090, service?.Ports[80]);
            Assert.NotNull(store.Current.FindServiceByVip(Ip(3, 101)));
            var consul = Assert.Single(store.Sources, s => s.Name == "mcp:consul");
            Assert.Contains("service shop/echo.shop.registry: shadowed by mcp:nacos (precedence 25)", consul.Conflicts);
            Assert.Equal(1, consul.Shadowed);
            Assert.Empty(Assert.Single(store.Sources, s => s.Name == "mcp:nacos").Conflicts);
            Assert.Single(log.Lines, l => l.Contains("service shop/echo.shop.registry is published by mcp:nacos (precedence 25) and mcp:consul (precedence 10)", StringComparison.Ordinal));

            // The winner drops the host: the other registry's entry takes over.
            high.Remove(ServiceEntryType, "shop/echo");
            await EventuallyAsync(() => store.Current.FindServiceByVip(Ip(3, 100))?.Ports[80] == 8080, "consul's entry took over");
            Assert.Empty(Assert.Single(store.Sources, s => s.Name == "mcp:consul").Conflicts);
            await a.StopAsync(CancellationToken.None).WaitAsync(Timeout);
            await b.StopAsync(CancellationToken.None).WaitAsync(Timeout);
        }
    }

    [Fact]
    public async Task A_registry_gone_keeps_its_objects_until_stale_after_then_they_are_withdrawn_and_the_others_stay()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var gone = await FakeMcpServer.StartAsync();
        await using var stays = await FakeMcpServer.StartAsync();
        gone.Set(ServiceEntryType, "shop/echo", Entry("echo.shop.registry", Ip(4, 100), 8080, Ip(4, 20)));
        stays.Set(ServiceEntryType, "shop/other", Entry("other.shop.registry", Ip(4, 101), 8080, Ip(4, 21)));
        var store = new MeshStore(NullLogger<MeshStore>.Instance);
        var (a, _) = Start(store, gone, "gone", 20, time, staleAfter: TimeSpan.FromMinutes(5));
        var (b, _) = Start(store, stays, "stays", 20, time, staleAfter: TimeSpan.FromMinutes(5));
        await using (a)
        await using (b)
        {
            try
            {
                await a.StartAsync(CancellationToken.None);
                await b.StartAsync(CancellationToken.None);
                await a.Source.Synced.WaitAsync(Timeout);
                await b.Source.Synced.WaitAsync(Timeout);
                Assert.NotNull(store.Current.FindServiceByVip(Ip(4, 100)));

                await gone.DisposeAsync();
                await EventuallyAsync(() => store.Sources.Single(s => s.Name == "mcp:gone").LastError?.Contains("keeping the last state", StringComparison.Ordinal) == true,
                    "the lost stream reported");
                // Just short of the timeout: everything is still there.
                time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(1));
                Assert.NotNull(store.Current.FindServiceByVip(Ip(4, 100)));
                Assert.NotNull(store.Current.FindWorkloadByIp(Ip(4, 20)));
                Assert.False(a.Withdrawn);

                time.Advance(TimeSpan.FromSeconds(1));
                await EventuallyAsync(() => store.Current.FindServiceByVip(Ip(4, 100)) is null, "the gone registry's service withdrawn");
                Assert.Null(store.Current.FindWorkloadByIp(Ip(4, 20)));
                Assert.True(a.Withdrawn);
                Assert.Contains("withdrawn", store.Sources.Single(s => s.Name == "mcp:gone").LastError, StringComparison.Ordinal);
                // The other registry is untouched.
                Assert.NotNull(store.Current.FindServiceByVip(Ip(4, 101)));
                Assert.NotNull(store.Current.FindWorkloadByIp(Ip(4, 21)));
                Assert.Null(store.Sources.Single(s => s.Name == "mcp:stays").LastError);
                Assert.False(b.Withdrawn);
            }
            finally
            {
                await gone.DisposeAsync();
                await a.StopAsync(CancellationToken.None).WaitAsync(Timeout);
                await b.StopAsync(CancellationToken.None).WaitAsync(Timeout);
            }
        }
    }

    [Fact]
    public async Task A_registry_that_never_answers_one_kind_is_ready_with_the_other_after_stale_after_and_nothing_is_withdrawn()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await FakeMcpServer.StartAsync();
        server.Unserved.Add(WorkloadEntryType);
        server.Set(ServiceEntryType, "shop/echo", Entry("echo.shop.registry", Ip(6, 100), 8080, Ip(6, 20)));
        var (source, store) = Start(null, server, "se-only", 20, time, staleAfter: TimeSpan.FromMinutes(5));
        await using (source)
        {
            await source.StartAsync(CancellationToken.None);
            await EventuallyAsync(() => store.Current.FindServiceByVip(Ip(6, 100)) is not null, "the ServiceEntry snapshot applied");
            Assert.False(source.Source.Synced.IsCompleted);
            time.Advance(TimeSpan.FromMinutes(5));
            await source.Source.Synced.WaitAsync(Timeout);
            Assert.NotNull(store.Current.FindServiceByVip(Ip(6, 100)));
            Assert.False(source.Withdrawn);
            await source.StopAsync(CancellationToken.None).WaitAsync(Timeout);
        }
    }

    [Fact]
    public async Task A_registry_on_v1alpha3_is_asked_in_that_spelling()
    {
        const string alpha = "networking.istio.io/v1alpha3/ServiceEntry";
        await using var server = await FakeMcpServer.StartAsync();
        server.Set(alpha, "shop/echo", Entry("echo.shop.registry", Ip(5, 100), 8080, Ip(5, 20)));
        var (source, store) = Start(null, server, "nacos", 25, version: "v1alpha3");
        await using (source)
        {
            await source.StartAsync(CancellationToken.None);
            await source.Source.Synced.WaitAsync(Timeout);
            Assert.NotNull(store.Current.FindServiceByVip(Ip(5, 100)));
            Assert.Contains(server.Requests, r => r.Request.TypeUrl == "networking.istio.io/v1alpha3/WorkloadEntry");
            Assert.DoesNotContain(server.Requests, r => r.Request.TypeUrl.Contains("/v1/", StringComparison.Ordinal));
            await source.StopAsync(CancellationToken.None).WaitAsync(Timeout);
        }
    }

    [Fact]
    public void Registry_specs_parse_from_a_url_or_key_value_pairs_and_errors_name_the_flag()
    {
        var bare = McpRegistryOptions.Parse("http://127.0.0.1:18848", 0);
        Assert.Equal(("mcp", 20, "v1", TimeSpan.FromMinutes(5)), (bare.Name, bare.Precedence, bare.ApiVersion, bare.StaleAfter));
        Assert.Equal("mcp2", McpRegistryOptions.Parse("http://127.0.0.1:1", 1).Name);
        var full = McpRegistryOptions.Parse("name=nacos,url=http://127.0.0.1:18848,precedence=25,version=v1alpha3,staleAfter=90s,tokenFile=/t", 0);
        Assert.Equal(("nacos", new Uri("http://127.0.0.1:18848"), 25, "v1alpha3", TimeSpan.FromSeconds(90), "/t"),
            (full.Name, full.Address, full.Precedence, full.ApiVersion, full.StaleAfter, full.TokenFile));
        Assert.Contains("precedence 'high'", Assert.Throws<FormatException>(() => McpRegistryOptions.Parse("url=http://a:1,precedence=high", 0)).Message, StringComparison.Ordinal);
        Assert.Contains("url=... is required", Assert.Throws<FormatException>(() => McpRegistryOptions.Parse("name=x", 0)).Message, StringComparison.Ordinal);
        Assert.Contains("'colour=red'", Assert.Throws<FormatException>(() => McpRegistryOptions.Parse("url=http://a:1,colour=red", 0)).Message, StringComparison.Ordinal);
        Assert.Contains("version 'v2'", Assert.Throws<FormatException>(() => McpRegistryOptions.Parse("url=http://a:1,version=v2", 0)).Message, StringComparison.Ordinal);
        Assert.Contains("staleAfter", Assert.Throws<FormatException>(() => McpRegistryOptions.Parse("url=http://a:1,staleAfter=5", 0)).Message, StringComparison.Ordinal);

        var cl = Ambient.Ztunnel.Cli.CommandLine.Parse(["--mcp-address", "name=a,url=http://127.0.0.1:1", "--mcp-address", "http://127.0.0.1:2"]);
        Assert.Null(cl.Error);
        var registries = cl.McpRegistries([]);
        Assert.Equal(["a", "mcp2"], registries.Select(r => r.Name));
        var dup = Ambient.Ztunnel.Cli.CommandLine.Parse(["--mcp-address", "name=a,url=http://127.0.0.1:1", "--mcp-address", "name=a,url=http://127.0.0.1:2"]);
        Assert.Contains("'a' is used by another registry", Assert.Throws<FormatException>(() => dup.McpRegistries([])).Message, StringComparison.Ordinal);
        Assert.NotNull(Ambient.Ztunnel.Cli.CommandLine.Parse(["--mcp-address"]).Error);
        Assert.Contains("--mcp-address", Ambient.Ztunnel.Cli.CommandLine.Usage, StringComparison.Ordinal);
    }

    [Fact]
    public void The_config_file_lists_registries_under_mcp_and_reports_bad_entries_with_their_line()
    {
        var ok = Ambient.Mesh.Config.ConfigLoader.Parse("""
            mcp:
              - name: nacos
                address: http://127.0.0.1:18848
                precedence: 25
                version: v1alpha3
                staleAfter: 2m
              - address: http://127.0.0.1:18849
            """, "test.yaml");
        Assert.True(ok.Ok, string.Join("\n", ok.Errors));
        Assert.Equal(["nacos", "mcp2"], ok.Config!.Mcp.Select(m => m.Name));
        Assert.Equal((25, "v1alpha3", TimeSpan.FromMinutes(2)), (ok.Config.Mcp[0].Precedence, ok.Config.Mcp[0].ApiVersion, ok.Config.Mcp[0].StaleAfter));

        var bad = Ambient.Mesh.Config.ConfigLoader.Parse("""
            mcp:
              - name: nacos
                precedence: 25
              - address: ftp://x
              - address: http://127.0.0.1:1
                colour: red
            """, "test.yaml");
        Assert.False(bad.Ok);
        Assert.Contains(bad.Errors, e => e.Field == "mcp[0].address" && e.Message.StartsWith("required", StringComparison.Ordinal));
        Assert.Contains(bad.Errors, e => e.Field == "mcp[1]" && e.Message.Contains("'ftp://x'", StringComparison.Ordinal) && e.Line == 4);
        Assert.Contains(bad.Errors, e => e.Field.StartsWith("mcp[2]", StringComparison.Ordinal) && e.Message.Contains("colour", StringComparison.Ordinal));
    }
}

/// <summary>An <see cref="ILogger{T}"/> that writes to another logger (a <see cref="Http2.TestLogger"/> collecting lines).</summary>
internal sealed class LoggerOf<T>(ILogger inner) : ILogger<T>
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        inner.Log(logLevel, eventId, state, exception, formatter);
}
