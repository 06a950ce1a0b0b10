using System.Net;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Identity;
using Ambient.Waypoint.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Waypoint.Tests.EndToEnd;

/// <summary>
/// What a user applies (an HTTPRoute and an AuthorizationPolicy for a Service that uses the waypoint) enforced per
/// request through ztunnel -> waypoint -> ztunnel, seen in Istio's metrics, the access log and /config_dump.
/// </summary>
public sealed class WaypointPolicyEndToEndTests
{
    private const string RouteAndPolicy = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: echo-routes, namespace: shop}
        spec:
          parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
          rules:
          - name: v2-by-header
            matches: [{path: {type: PathPrefix, value: /}, headers: [{name: x-version, value: v2}]}]
            backendRefs: [{name: echo-v2, port: 80}]
          - name: split
            matches: [{path: {type: PathPrefix, value: /split}}]
            backendRefs: [{name: echo-v1, port: 80, weight: 50}, {name: echo-v2, port: 80, weight: 50}]
          - name: app
            matches: [{path: {type: PathPrefix, value: /app}}, {path: {type: PathPrefix, value: /admin}}]
            filters:
            - type: RequestHeaderModifier
              requestHeaderModifier: {add: [{name: x-mesh, value: waypoint}]}
            - type: ResponseHeaderModifier
              responseHeaderModifier: {set: [{name: x-route, value: app}]}
            backendRefs: [{name: echo-v1, port: 80}]
          - name: rewrite
            matches: [{path: {type: PathPrefix, value: /old}}]
            filters:
            - type: URLRewrite
              urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
            backendRefs: [{name: echo-v1, port: 80}]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny-admin, namespace: shop}
        spec:
          targetRefs: [{kind: Service, group: "", name: echo}]
          action: DENY
          rules:
          - to: [{operation: {paths: ["/admin*"]}}]
        """;

    [Fact]
    public async Task RoutesAndPoliciesAreEnforcedPerRequestAndReported()
    {
        await using var mesh = await WaypointMesh.StartAsync(RouteAndPolicy);

        var v2 = await mesh.CurlAsync("/anything", "-H", "x-version: v2");
        Assert.True(v2.Status == 200, $"{v2.Status} {v2.Stderr} {mesh.WaypointLog}");
        Assert.Equal("echo-v2", v2.Echo("backend"));

        var app = await mesh.CurlAsync("/app/page");
        Assert.Equal(200, app.Status);
        Assert.Equal("echo-v1", app.Echo("backend"));
        Assert.Equal("waypoint", app.Echo("h-x-mesh"));
        Assert.Equal("app", app.Header("x-route"));

        var rewritten = await mesh.CurlAsync("/old/item?id=7", "--http2-prior-knowledge");
        Assert.Equal(200, rewritten.Status);
        Assert.Equal("/new/item?id=7", rewritten.Echo("path"));

        var seen = new HashSet<string>();
        for (int i = 0; i < 30 && seen.Count < 2; i++)
        {
            var r = await mesh.CurlAsync("/split");
            Assert.Equal(200, r.Status);
            seen.Add(r.Echo("backend")!);
        }
        Assert.Equal(["echo-v1", "echo-v2"], seen.Order());

        var denied = await mesh.CurlAsync("/admin/users");
        Assert.Equal(403, denied.Status);
        Assert.Equal("RBAC: access denied", denied.Body);

        var unrouted = await mesh.CurlAsync("/nowhere");
        Assert.Equal(404, unrouted.Status);

        // Istio's metrics, labelled as Istio labels them.
        string metrics = await mesh.GetAdminAsync(mesh.WaypointEndpoints.Metrics, "/metrics");
        string Series(string code, string flags, string destination) => metrics.Split('\n').FirstOrDefault(l =>
            l.StartsWith("istio_requests_total{", StringComparison.Ordinal)
            && l.Contains($"response_code=\"{code}\"", StringComparison.Ordinal)
            && l.Contains($"response_flags=\"{flags}\"", StringComparison.Ordinal)
            && l.Contains($"destination_workload=\"{destination}\"", StringComparison.Ordinal)) ?? "";
        string ok = Series("200", "-", "echo-v2");
        Assert.Contains("reporter=\"waypoint\"", ok, StringComparison.Ordinal);
        Assert.Contains("source_workload=\"client\"", ok, StringComparison.Ordinal);
        Assert.Contains("source_principal=\"spiffe://cluster.local/ns/shop/sa/client\"", ok, StringComparison.Ordinal);
        Assert.Contains("destination_principal=\"spiffe://cluster.local/ns/shop/sa/echo\"", ok, StringComparison.Ordinal);
        Assert.Contains("destination_version=\"v2\"", ok, StringComparison.Ordinal);
        Assert.Contains("request_protocol=\"http\"", ok, StringComparison.Ordinal);
        Assert.Contains("connection_security_policy=\"mutual_tls\"", ok, StringComparison.Ordinal);
        Assert.EndsWith(" 1", Series("403", "DENY", "unknown"), StringComparison.Ordinal);
        Assert.EndsWith(" 1", Series("404", "NR", "unknown"), StringComparison.Ordinal);
        Assert.Contains("istio_request_duration_milliseconds_bucket{", metrics, StringComparison.Ordinal);
        Assert.Contains("le=\"3600000\"", metrics, StringComparison.Ordinal);
        Assert.Contains("istio_request_bytes_count{", metrics, StringComparison.Ordinal);
        Assert.Contains("istio_response_bytes_sum{", metrics, StringComparison.Ordinal);

        string log = mesh.WaypointLog.ToString();
        Assert.Contains("\"GET /admin/users HTTP/1.1\" 403 DENY", log, StringComparison.Ordinal);
        Assert.Contains("detail=\"denied by DENY policy shop/deny-admin\"", log, StringComparison.Ordinal);
        Assert.Contains("\"GET /nowhere HTTP/1.1\" 404 NR", log, StringComparison.Ordinal);
        Assert.Contains("route=HTTPRoute/shop/echo-routes#v2-by-header", log, StringComparison.Ordinal);

        string dump = await mesh.GetAdminAsync(mesh.WaypointEndpoints.Admin, "/config_dump");
        Assert.Contains("\"gateway\": \"shop/waypoint\"", dump, StringComparison.Ordinal);
        Assert.Contains("\"name\": \"shop/echo-routes\"", dump, StringComparison.Ordinal);
        Assert.Contains("\"name\": \"shop/deny-admin\"", dump, StringComparison.Ordinal);
        Assert.Contains($"\"source\": \"manifests:{mesh.ManifestDir}", dump, StringComparison.Ordinal); // where each came from
        Assert.Equal("ready\n", await mesh.GetAdminAsync(mesh.WaypointEndpoints.Readiness, "/healthz/ready"));

        // A policy change applies to the next request; a broken manifest is refused and the last good state stays.
        await mesh.ApplyAsync(RouteAndPolicy.Replace("\"/admin*\"", "\"/app*\"", StringComparison.Ordinal));
        Assert.Equal(403, (await mesh.CurlAsync("/app/page")).Status);
        Assert.Equal(200, (await mesh.CurlAsync("/admin/users")).Status);
        await File.WriteAllTextAsync(Path.Combine(mesh.ManifestDir, "extra.yaml"), RouteAndPolicy.Replace("action: DENY", "action: MAYBE", StringComparison.Ordinal));
        await TestWait.UntilAsync(
            async () => (await mesh.GetAdminAsync(mesh.WaypointEndpoints.Metrics, "/metrics")).Contains("ambient_config_reloads_total{result=\"failure\"}", StringComparison.Ordinal),
            "the broken manifest is reported");
        Assert.Equal(403, (await mesh.CurlAsync("/app/page")).Status);
    }

    [Fact]
    public async Task TunnelsForUnknownOrForeignDestinationsAndForeignIdentitiesAreRefused()
    {
        await using var mesh = await WaypointMesh.StartAsync();
        using var ca = CertificateAuthority.LoadOrCreate(null, null, mesh.Dir, "cluster.local");
        await using var certificates = new CertificateManager(ca, TimeSpan.FromHours(1), TimeProvider.System, NullLogger.Instance);
        await using var pool = new HbonePool(certificates, new HbonePoolOptions(), NullLogger.Instance);
        var waypoint = new IPEndPoint(mesh.WaypointIp, 15008);
        string[] expected = ["spiffe://cluster.local/ns/shop/sa/waypoint"];

        async Task<int> ConnectAsync(SpiffeId source, string authority)
        {
            var target = new HboneTarget(waypoint, authority, source, expected, mesh.Client);
            try
            {
                var tunnel = await pool.ConnectAsync(target, HboneHeaders.ForConnect(authority, new IPEndPoint(mesh.Client, 1234), null), CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
                tunnel.Stream.Reset(Mesh.Http2.Http2ErrorCode.Cancel);
                return 200;
            }
            catch (HboneException ex)
            {
                // No status: the connection itself failed (the server refused the client certificate after the
                // TLS 1.3 handshake, which the client sees as a TLS or protocol failure).
                return ex.Status == 0 ? -1 : ex.Status;
            }
        }

        var client = new SpiffeId("cluster.local", "shop", "client");
        Assert.Equal(200, await ConnectAsync(client, $"{mesh.Vip}:80"));
        Assert.Equal(503, await ConnectAsync(client, "127.0.0.99:80")); // nothing in the mesh has that address
        Assert.Equal(503, await ConnectAsync(client, $"{mesh.Vip}:81")); // the service has no such port
        Assert.Equal(400, await ConnectAsync(client, $"{mesh.OtherVip}:80")); // a service that does not use this waypoint
        // A certificate from the mesh's CA but for another trust domain: the handshake is refused.
        Assert.Equal(-1, await ConnectAsync(new SpiffeId("evil.example", "shop", "client"), $"{mesh.Vip}:80"));
        // The client sees the refused handshake before the waypoint's accept loop has counted it: wait for the count.
        const string tlsRefused = "ambient_waypoint_refused_total{reason=\"tls_handshake\"} 1";
        string metrics = await mesh.GetAdminAsync(mesh.WaypointEndpoints.Metrics, "/metrics");
        for (var deadline = DateTime.UtcNow.AddSeconds(15); !metrics.Contains(tlsRefused, StringComparison.Ordinal) && DateTime.UtcNow < deadline;)
        {
            await Task.Delay(50);
            metrics = await mesh.GetAdminAsync(mesh.WaypointEndpoints.Metrics, "/metrics");
        }
        Assert.Contains("ambient_waypoint_refused_total{reason=\"unknown_destination\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("ambient_waypoint_refused_total{reason=\"not_served\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains(tlsRefused, metrics, StringComparison.Ordinal);
        // And the waypoint keeps serving.
        Assert.Equal(200, (await mesh.CurlAsync("/still-there")).Status);
    }
}
