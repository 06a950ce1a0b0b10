using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes;

internal sealed partial class Translation
{
    private sealed record SliceEndpoint(ImmutableArray<IPAddress> Addresses, bool Ready, string? PodName, string? PodNamespace, string Node);

    private sealed record Slice(string ServiceName, ImmutableArray<SliceEndpoint> Endpoints, ImmutableArray<(string Name, int Port)>? Ports);

    /// <summary>
    /// EndpointSlices, when a Service has them, decide its endpoints (a live cluster's endpoint controller wrote
    /// them; a manifest set usually has none, and the selector decides). An address whose targetRef is a Pod
    /// joins that pod's workload; any other address (a selector-less Service pointing at a VM or a database)
    /// becomes a workload of its own, as Istio does, with uid <c>&lt;cluster&gt;/discovery.k8s.io/EndpointSlice/&lt;ns&gt;/&lt;slice&gt;/&lt;ip&gt;</c>.
    /// FQDN slices are ignored (Istio too).
    /// </summary>
    private void TranslateEndpointSlices()
    {
        foreach (KubeObject o in _slices)
        {
            if (ParseOnce(o, ParseSlice) is not { } slice)
            {
                continue;
            }
            string ns = NamespaceOf(o);
            if (!_serviceByName.TryGetValue((ns, slice.ServiceName), out ServiceInfo? svc))
            {
                continue; // a slice of a Service that is not (yet) there: nothing routes to it
            }
            svc.HasSlices = true;
            ImmutableDictionary<int, int> ports = SlicePorts(svc, slice.Ports);
            foreach (SliceEndpoint ep in slice.Endpoints)
            {
                if (ep.PodName is not null)
                {
                    if (_podByName.TryGetValue((ep.PodNamespace ?? ns, ep.PodName), out PodInfo? pod))
                    {
                        if (!_sliceServices.TryGetValue(pod, out var forPod))
                        {
                            _sliceServices[pod] = forPod = new Dictionary<string, ImmutableDictionary<int, int>>(StringComparer.Ordinal);
                        }
                        forPod[svc.Model.Key] = ports;
                    }
                    continue; // a pod we do not know (yet): its own Pod object will carry it
                }
                foreach (IPAddress ip in ep.Addresses)
                {
                    _workloadsOut.Add(new Workload
                    {
                        Uid = $"{options.ClusterId}/discovery.k8s.io/EndpointSlice/{ns}/{o.Name}/{ip}",
                        Name = o.Name,
                        Namespace = ns,
                        WorkloadIps = [ip],
                        Protocol = InboundProtocol.Tcp,
                        Node = ep.Node,
                        ClusterId = options.ClusterId,
                        WorkloadName = o.Name,
                        CanonicalName = slice.ServiceName,
                        CanonicalRevision = "latest",
                        Status = ep.Ready ? HealthStatus.Healthy : HealthStatus.Unhealthy,
                        Services = ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty.WithComparers(StringComparer.Ordinal).Add(svc.Model.Key, ports),
                    });
                }
            }
        }
    }

    /// <summary>The slice's ports are the service's target ports, matched to service ports by name.</summary>
    private static ImmutableDictionary<int, int> SlicePorts(ServiceInfo svc, ImmutableArray<(string Name, int Port)>? slicePorts)
    {
        if (slicePorts is not { } list)
        {
            return svc.NumericPorts ?? PortsFor(svc, null);
        }
        var b = ImmutableDictionary.CreateBuilder<int, int>();
        foreach (ServicePort p in svc.Ports)
        {
            foreach ((string name, int port) in list)
            {
                if (name == p.Name)
                {
                    b[p.Port] = port;
                    break;
                }
            }
        }
        return b.ToImmutable();
    }

    private static Slice? ParseSlice(KubeObject o, YamlConfigReader r)
    {
        if (!o.Labels.TryGetValue(KubeLabels.ServiceName, out string? service) || service.Length == 0)
        {
            return null; // not a Service's slice: an arbitrary bag of addresses with no meaning for the mesh
        }
        if (KubeYaml.Text(o.Body, "addressType") == "FQDN")
        {
            return null;
        }
        var endpoints = ImmutableArray.CreateBuilder<SliceEndpoint>();
        YamlSequenceNode? seq = KubeYaml.Seq(r, o.Body, "endpoints", "");
        for (int i = 0; seq is not null && i < seq.Children.Count; i++)
        {
            var p = new FieldPath("endpoints", i);
            YamlMappingNode? ep = KubeYaml.AsMap(r, seq.Children[i], p);
            if (ep is null)
            {
                continue;
            }
            var addresses = ImmutableArray.CreateBuilder<IPAddress>();
            YamlSequenceNode? addrs = KubeYaml.Seq(r, ep, "addresses", p);
            for (int j = 0; addrs is not null && j < addrs.Children.Count; j++)
            {
                if (KubeYaml.Ip(r, addrs.Children[j], new FieldPath("endpoints", i, "addresses", j)) is { } ip && !addresses.Contains(ip))
                {
                    addresses.Add(ip);
                }
            }
            // conditions.ready: absent means "unknown", which Kubernetes says to read as ready.
            bool ready = KubeYaml.Text(KubeYaml.Get(ep, "conditions") as YamlMappingNode, "ready") != "false";
            YamlMappingNode? target = KubeYaml.Map(r, ep, "targetRef", p);
            string? podName = KubeYaml.Text(target, "kind") == "Pod" ? KubeYaml.Text(target, "name") : null;
            endpoints.Add(new SliceEndpoint(addresses.ToImmutable(), ready, podName, KubeYaml.Text(target, "namespace"),
                KubeYaml.Str(r, ep, "nodeName", p) ?? ""));
        }
        ImmutableArray<(string, int)>? ports = null;
        YamlSequenceNode? portSeq = KubeYaml.Seq(r, o.Body, "ports", "");
        if (portSeq is not null)
        {
            var pb = ImmutableArray.CreateBuilder<(string, int)>(portSeq.Children.Count);
            for (int i = 0; i < portSeq.Children.Count; i++)
            {
                var p = new FieldPath("ports", i);
                YamlMappingNode? port = KubeYaml.AsMap(r, portSeq.Children[i], p);
                if (KubeYaml.Port(r, port, "port", p) is int n)
                {
                    pb.Add((KubeYaml.Str(r, port, "name", p) ?? "", n));
                }
            }
            ports = pb.ToImmutable();
        }
        return new Slice(service, endpoints.ToImmutable(), ports);
    }
}
