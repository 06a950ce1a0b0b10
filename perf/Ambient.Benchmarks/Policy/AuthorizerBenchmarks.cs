using System.Net;
using Ambient.Benchmarks.Fixtures;
using Ambient.Mesh.Model;
using Ambient.Mesh.Policy;
using Ambient.Mesh.State;
using BenchmarkDotNet.Attributes;

namespace Ambient.Benchmarks.Policy;

/// <summary>
/// L4 authorization of one connection (once per inbound connection on the agent) over a snapshot holding
/// <see cref="PolicyFixtures.Total"/> policies. Expected: no allocation in any case.
/// </summary>
[MemoryDiagnoser]
public class AuthorizerBenchmarks
{
    private MeshSnapshot _snapshot = null!;
    private Workload _teamApi = null!;
    private Workload _defaultApi = null!;
    private ConnectionInfo _frontend;
    private ConnectionInfo _compromised;
    private ConnectionInfo _stranger;

    [GlobalSetup]
    public void Setup()
    {
        _snapshot = MeshSnapshot.Build(PolicyFixtures.Build(), 1);
        _teamApi = _snapshot.FindWorkload("team-7", "api-0") ?? throw new InvalidOperationException("team-7/api-0 missing");
        _defaultApi = _snapshot.FindWorkload("default", "api-0") ?? throw new InvalidOperationException("default/api-0 missing");
        IPAddress source = IPAddress.Parse("10.244.3.17");
        IPAddress destination = _teamApi.WorkloadIps[0];
        _frontend = new ConnectionInfo(source, destination, MeshFixtures.TargetPort, PolicyFixtures.FrontendPrincipal, null, null);
        _compromised = new ConnectionInfo(source, destination, MeshFixtures.TargetPort, PolicyFixtures.CompromisedPrincipal, null, null);
        _stranger = new ConnectionInfo(source, destination, MeshFixtures.TargetPort, PolicyFixtures.StrangerPrincipal, null, null);

        // The cases must decide the way their names say, or the numbers measure something else.
        Expect(AllowedByAllow(), true, "team-7/allow-frontend");
        Expect(DeniedByDeny(), false, "istio-system/global-deny-99");
        Expect(NoAllowPolicyApplies(), true, null);
        Expect(NoAllowPolicyMatches(), false, null);
    }

    /// <summary>Passes all 117 DENYs, then matches <c>allow-frontend</c> (the 32nd of 35 ALLOWs).</summary>
    [Benchmark]
    public AuthorizationDecision AllowedByAllow() => Authorizer.Evaluate(_snapshot, _teamApi, _frontend);

    /// <summary>The deciding DENY is the last of 117.</summary>
    [Benchmark]
    public AuthorizationDecision DeniedByDeny() => Authorizer.Evaluate(_snapshot, _teamApi, _compromised);

    /// <summary>Destination namespace has no policies: 100 global DENYs checked, no ALLOW applies, allowed.</summary>
    [Benchmark]
    public AuthorizationDecision NoAllowPolicyApplies() => Authorizer.Evaluate(_snapshot, _defaultApi, _frontend);

    /// <summary>Worst case: every DENY and every ALLOW is checked and none matches, denied.</summary>
    [Benchmark]
    public AuthorizationDecision NoAllowPolicyMatches() => Authorizer.Evaluate(_snapshot, _teamApi, _stranger);

    private static void Expect(AuthorizationDecision d, bool allowed, string? policy)
    {
        if (d.Allowed != allowed || d.PolicyKey != policy)
        {
            throw new InvalidOperationException($"fixture decided {d.Allowed} by {d.PolicyKey ?? "-"} ({d.Reason}); expected {allowed} by {policy ?? "-"}");
        }
    }
}
