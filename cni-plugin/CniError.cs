namespace Ambient.Cni;

/// <summary>
/// Error codes from the CNI spec ("Error" section, 1.1.0). 100 and up are ours.
/// </summary>
internal enum CniErrorCode : uint
{
    IncompatibleVersion = 1,
    UnsupportedField = 2,
    UnknownContainer = 3,
    InvalidEnvironment = 4,
    IoFailure = 5,
    DecodingFailure = 6,
    InvalidConfig = 7,
    TryAgainLater = 11,
    PluginNotAvailable = 50,
    PluginNotAvailableLimitedConnectivity = 51,

    /// <summary>A bug or an unexpected runtime failure inside the plugin itself.</summary>
    Internal = 100,
}

/// <summary>
/// A failure that ends the invocation with a CNI error object on stdout. Thrown only at the
/// boundaries (environment, stdin, config, agent verdict); everything else reports results.
/// </summary>
internal sealed class CniException(CniErrorCode code, string message, string? details = null) : Exception(message)
{
    public CniErrorCode Code { get; } = code;

    /// <summary>Longer explanation or the next step for the operator; omitted from the JSON when null.</summary>
    public string? Details { get; } = details;
}
