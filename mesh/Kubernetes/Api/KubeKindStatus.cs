namespace Ambient.Mesh.Kubernetes.Api;

/// <summary>Where one watched kind stands, for <c>/config_dump</c> and logs.</summary>
/// <param name="Watch">The kind and its selectors.</param>
/// <param name="Synced">The first list completed (or the kind turned out not to be installed). Stays true while the
/// server is unreachable: the objects held are the last state seen.</param>
/// <param name="Missing">The kind is not installed on the API server (its collection answered 404).</param>
/// <param name="LastSync">When the last list completed.</param>
/// <param name="LastEvent">When the last watch event (bookmarks included) arrived.</param>
/// <param name="ObjectCount">Objects of this kind held now.</param>
/// <param name="ResourceVersion">The version the next watch starts from.</param>
/// <param name="Error">Why the last request failed; null once a request succeeds again.</param>
/// <param name="ErrorTime">When <paramref name="Error"/> happened.</param>
/// <param name="Lists">Lists completed (the first one, plus one per expired resourceVersion or reappearance).</param>
/// <param name="Failures">Failed requests since start.</param>
public sealed record KubeKindStatus(
    KubeWatch Watch,
    bool Synced,
    bool Missing,
    DateTimeOffset? LastSync,
    DateTimeOffset? LastEvent,
    int ObjectCount,
    string ResourceVersion,
    string? Error,
    DateTimeOffset? ErrorTime,
    long Lists,
    long Failures);
