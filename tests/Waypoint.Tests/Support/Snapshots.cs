using System.Net;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Sources;
using Ambient.Mesh.State;
using Ambient.Waypoint.Hbone;
using Microsoft.AspNetCore.Http;

namespace Ambient.Waypoint.Tests.Support;

/// <summary>Mesh snapshots from manifests (as a user writes them) and requests to route, for the table tests.</summary>
internal static class Snapshots
{
    /// <summary>Namespace shop: Service echo (10.0.0.1:80, waypoint "waypoint") over pods echo-v1/echo-v2, Service other, the Gateway.</summary>
    public const string Base = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {name: waypoint, namespace: shop}
        spec:
          gatewayClassName: istio-waypoint
          listeners: [{name: mesh, port: 15008, protocol: HBONE}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: echo-v1, namespace: shop, labels: {app: echo, version: v1}}
        spec: {nodeName: n, serviceAccountName: echo, containers: [{name: c, image: i}]}
        status: {podIP: 10.0.1.1, podIPs: [{ip: 10.0.1.1}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: echo-v2, namespace: shop, labels: {app: echo, version: v2}}
        spec: {nodeName: n, serviceAccountName: echo, containers: [{name: c, image: i}]}
        status: {podIP: 10.0.1.2, podIPs: [{ip: 10.0.1.2}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: echo, namespace: shop, labels: {istio.io/use-waypoint: waypoint}}
        spec: {clusterIP: 10.0.0.1, selector: {app: echo}, ports: [{name: http, port: 80, targetPort: 8080}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: echo-v1, namespace: shop}
        spec: {clusterIP: 10.0.0.2, selector: {app: echo, version: v1}, ports: [{name: http, port: 80, targetPort: 8080}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: echo-v2, namespace: shop}
        spec: {clusterIP: 10.0.0.3, selector: {app: echo, version: v2}, ports: [{name: http, port: 80, targetPort: 8080}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: other, namespace: shop, labels: {istio.io/use-waypoint: waypoint}}
        spec: {clusterIP: 10.0.0.4, selector: {app: echo}, ports: [{name: http, port: 80, targetPort: 8080}]}
        """;

    /// <summary>The snapshot of <see cref="Base"/> plus <paramref name="extra"/>; fails the test on any translation error.</summary>
    public static MeshSnapshot Build(string extra) => MeshSnapshot.Build(Resources(extra), 1);

    /// <summary>The resources of <see cref="Base"/> plus <paramref name="extra"/> (for a source to publish); fails the test on any translation error.</summary>
    public static MeshResources Resources(string extra)
    {
        var read = ManifestReader.Parse(Base + (extra.Length > 0 ? "\n---\n" + extra : ""), "test.yaml");
        Assert.True(read.Ok, string.Join("\n", read.Errors));
        var translated = new KubeTranslator(new KubeTranslatorOptions { TrustDomain = "cluster.local" }).Translate(read.Objects);
        Assert.True(translated.Errors.IsEmpty, string.Join("\n", translated.Errors));
        return translated.Resources;
    }

    public static readonly WaypointIdentity Waypoint = new("shop", "waypoint", "cluster.local", IPAddress.Parse("10.0.2.1"));

    /// <summary>A tunnel from <paramref name="serviceAccount"/> in <paramref name="ns"/> to the service at <paramref name="vip"/>:80.</summary>
    public static TunnelInfo Tunnel(MeshSnapshot snapshot, string serviceAccount = "client", string ns = "shop", string vip = "10.0.0.1", string client = "10.0.3.1")
    {
        var service = snapshot.FindServiceByVip(IPAddress.Parse(vip));
        Assert.NotNull(service);
        return new TunnelInfo(new SpiffeId("cluster.local", ns, serviceAccount), new IPEndPoint(IPAddress.Parse(client), 40000), new IPEndPoint(IPAddress.Parse(vip), 80), service, null, null);
    }

    /// <summary>"GET /path?q" with "name: value" headers, Host echo.shop.</summary>
    public static HttpRequest Request(string method, string pathAndQuery, params string[] headers)
    {
        var context = new DefaultHttpContext();
        var request = context.Request;
        request.Method = method;
        request.Scheme = "http";
        request.Host = new HostString("echo.shop");
        int q = pathAndQuery.IndexOf('?', StringComparison.Ordinal);
        request.Path = q < 0 ? pathAndQuery : pathAndQuery[..q];
        request.QueryString = q < 0 ? QueryString.Empty : new QueryString(pathAndQuery[q..]);
        foreach (var h in headers)
        {
            int colon = h.IndexOf(':', StringComparison.Ordinal);
            request.Headers.Append(h[..colon].Trim(), h[(colon + 1)..].Trim());
        }
        return request;
    }
}
