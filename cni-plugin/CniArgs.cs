namespace Ambient.Cni;

/// <summary>
/// The Kubernetes identity carried in <c>CNI_ARGS</c> ("K=V;K2=V2", CONVENTIONS.md). Unknown keys are an
/// error unless <c>IgnoreUnknown=1|true</c> is present, the convention libcni plugins follow; kubelet and
/// the CRI runtimes always send IgnoreUnknown because they add keys not every plugin knows.
/// </summary>
internal sealed record CniArgs(string? PodName, string? PodNamespace, string? PodUid, string? InfraContainerId)
{
    public static readonly CniArgs Empty = new(null, null, null, null);

    /// <summary>True when the runtime told us which Kubernetes pod this is.</summary>
    public bool HasPod => PodName is not null && PodNamespace is not null;

    public static CniArgs Parse(string? raw)
    {
        if (string.IsNullOrEmpty(raw))
        {
            return Empty;
        }

        string? name = null, ns = null, uid = null, infra = null;
        bool ignoreUnknown = false;
        List<string>? unknown = null;
        foreach (var pair in raw.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new CniException(
                    CniErrorCode.InvalidEnvironment,
                    $"invalid CNI_ARGS: \"{pair}\" is not KEY=VALUE",
                    "CNI_ARGS must be semicolon-separated KEY=VALUE pairs, e.g. K8S_POD_NAME=web;K8S_POD_NAMESPACE=default");
            }

            string key = pair[..eq];
            string value = pair[(eq + 1)..];
            switch (key)
            {
                case "K8S_POD_NAME": name = NullIfEmpty(value); break;
                case "K8S_POD_NAMESPACE": ns = NullIfEmpty(value); break;
                case "K8S_POD_UID": uid = NullIfEmpty(value); break;
                case "K8S_POD_INFRA_CONTAINER_ID": infra = NullIfEmpty(value); break;
                case "IgnoreUnknown":
                    ignoreUnknown = value.Equals("1", StringComparison.Ordinal) || value.Equals("true", StringComparison.OrdinalIgnoreCase);
                    break;
                default:
                    (unknown ??= []).Add(key);
                    break;
            }
        }

        if (unknown is not null && !ignoreUnknown)
        {
            throw new CniException(
                CniErrorCode.InvalidEnvironment,
                $"invalid CNI_ARGS: unknown key(s) {string.Join(", ", unknown)}",
                "add IgnoreUnknown=1 to CNI_ARGS to let ambient-cni ignore keys meant for other plugins");
        }

        return new CniArgs(name, ns, uid, infra);
    }

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;
}
