using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.State;
using Ambient.Mesh.Model;

namespace Ambient.Mesh.Policy;

/// <summary>What L4 authorization knows about a connection.</summary>
/// <param name="SourcePrincipal">Peer identity without the scheme, e.g. <c>cluster.local/ns/a/sa/b</c>; null when unauthenticated (plaintext).</param>
public readonly record struct ConnectionInfo(
    IPAddress SourceIp,
    IPAddress DestinationIp,
    int DestinationPort,
    string? SourcePrincipal,
    string? SourceNamespace,
    string? SourceServiceAccount);

/// <summary>The verdict and why: <see cref="PolicyKey"/> names the deciding policy ("ns/name") when one decided.</summary>
public readonly record struct AuthorizationDecision(bool Allowed, string? PolicyKey, string Reason, ImmutableArray<string> DryRunMatches);

/// <summary>Istio's L4 evaluation: any matching DENY denies; no ALLOW applying allows; a matching ALLOW allows; else deny.</summary>
public static class Authorizer
{
    public static AuthorizationDecision Evaluate(MeshSnapshot snapshot, Workload destination, in ConnectionInfo connection) =>
        throw new NotImplementedException();
}
