using System.Net;

namespace Ambient.Mesh.Kubernetes.Api;

/// <summary>
/// The API server refused a request: an HTTP error status, or an ERROR event in a watch. Carries the
/// <c>Status</c> object's code, reason and message when the server sent one.
/// </summary>
public sealed class KubeApiException : Exception
{
    public KubeApiException(int code, string reason, string message)
        : base(message)
    {
        Code = code;
        Reason = reason;
    }

    public KubeApiException()
    {
        Reason = "";
    }

    public KubeApiException(string message)
        : base(message)
    {
        Reason = "";
    }

    public KubeApiException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = "";
    }

    /// <summary>The HTTP status (or the Status object's <c>code</c>).</summary>
    public int Code { get; }

    /// <summary>The Status object's <c>reason</c> ("Expired", "NotFound", "Forbidden"...), or "".</summary>
    public string Reason { get; }

    /// <summary>410: the requested resourceVersion is too old (compacted); the only way on is a fresh list.</summary>
    public bool IsGone => Code == (int)HttpStatusCode.Gone;

    public bool IsNotFound => Code == (int)HttpStatusCode.NotFound;
}
