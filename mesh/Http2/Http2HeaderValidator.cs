namespace Ambient.Mesh.Http2;

/// <summary>
/// Checks that decoded field blocks are well-formed HTTP/2 messages (RFC 9113 section 8). A malformed message is a
/// stream error PROTOCOL_ERROR (section 8.1.1), so these return a reason instead of throwing.
/// </summary>
internal static class Http2HeaderValidator
{
    /// <summary>Validates a request; null when it is acceptable.</summary>
    public static string? ValidateRequest(List<HeaderField> headers, bool extendedConnect)
    {
        string? method = null, scheme = null, path = null, authority = null, protocol = null;
        bool regularSeen = false;
        foreach (HeaderField field in headers)
        {
            if (field.Name.Length > 0 && field.Name[0] == ':')
            {
                if (regularSeen)
                {
                    return "pseudo-header after a regular field";
                }

                ref string? slot = ref method;
                switch (field.Name)
                {
                    case ":method": slot = ref method; break;
                    case ":scheme": slot = ref scheme; break;
                    case ":path": slot = ref path; break;
                    case ":authority": slot = ref authority; break;
                    case ":protocol" when extendedConnect: slot = ref protocol; break;
                    default: return $"pseudo-header {field.Name} not allowed in a request";
                }

                if (slot is not null)
                {
                    return $"duplicate {field.Name}";
                }

                slot = field.Value;
                if (!IsValidValue(field.Value))
                {
                    return $"invalid value for {field.Name}";
                }

                continue;
            }

            regularSeen = true;
            string? error = ValidateRegular(field);
            if (error is not null)
            {
                return error;
            }
        }

        if (method is null)
        {
            return "missing :method";
        }

        if (method == "CONNECT" && protocol is null)
        {
            // Section 8.5: a plain CONNECT names only the target.
            if (scheme is not null || path is not null)
            {
                return "CONNECT with :scheme or :path";
            }

            return string.IsNullOrEmpty(authority) ? "CONNECT without :authority" : null;
        }

        if (protocol is not null && method != "CONNECT")
        {
            return ":protocol without CONNECT";
        }

        if (scheme is null || string.IsNullOrEmpty(path))
        {
            return "missing :scheme or :path";
        }

        return protocol is not null && string.IsNullOrEmpty(authority) ? "extended CONNECT without :authority" : null;
    }

    /// <summary>Validates a response; on success <paramref name="status"/> and <paramref name="regular"/> are set.</summary>
    public static string? ValidateResponse(List<HeaderField> headers, out int status, out List<HeaderField> regular)
    {
        status = 0;
        regular = new List<HeaderField>(headers.Count);
        bool statusSeen = false;
        foreach (HeaderField field in headers)
        {
            if (field.Name.Length > 0 && field.Name[0] == ':')
            {
                if (regular.Count > 0)
                {
                    return "pseudo-header after a regular field";
                }

                if (field.Name != ":status")
                {
                    return $"pseudo-header {field.Name} not allowed in a response";
                }

                if (statusSeen)
                {
                    return "duplicate :status";
                }

                statusSeen = true;
                string v = field.Value;
                if (v.Length != 3 || !char.IsAsciiDigit(v[0]) || !char.IsAsciiDigit(v[1]) || !char.IsAsciiDigit(v[2]) || v[0] == '0')
                {
                    return "invalid :status";
                }

                status = ((v[0] - '0') * 100) + ((v[1] - '0') * 10) + (v[2] - '0');
                continue;
            }

            string? error = ValidateRegular(field);
            if (error is not null)
            {
                return error;
            }

            regular.Add(field);
        }

        return statusSeen ? null : "missing :status";
    }

    /// <summary>Trailers carry no pseudo-headers (section 8.1).</summary>
    public static string? ValidateTrailers(List<HeaderField> headers)
    {
        foreach (HeaderField field in headers)
        {
            if (field.Name.Length > 0 && field.Name[0] == ':')
            {
                return "pseudo-header in trailers";
            }

            string? error = ValidateRegular(field);
            if (error is not null)
            {
                return error;
            }
        }

        return null;
    }

    /// <summary>Checks fields we are about to send, so a bad argument can never desynchronise the HPACK encoder.</summary>
    public static void ThrowIfInvalidOutgoing(IReadOnlyList<HeaderField> headers)
    {
        for (int i = 0; i < headers.Count; i++)
        {
            HeaderField field = headers[i];
            if (field.Name is null || field.Value is null || field.Name.Length == 0)
            {
                throw new ArgumentException("Header names and values must be non-null and names non-empty.", nameof(headers));
            }

            bool pseudo = field.Name[0] == ':';
            if ((!pseudo && !IsValidName(field.Name)) || !IsValidValue(field.Value))
            {
                throw new ArgumentException($"Header '{field.Name}' is not valid in HTTP/2 (lower-case token names, no CR/LF/NUL).", nameof(headers));
            }
        }
    }

    private static string? ValidateRegular(HeaderField field)
    {
        if (!IsValidName(field.Name))
        {
            return $"invalid field name '{field.Name}'";
        }

        switch (field.Name)
        {
            // Connection-specific fields have no meaning in HTTP/2 (section 8.2.2).
            case "connection" or "proxy-connection" or "keep-alive" or "transfer-encoding" or "upgrade":
                return $"connection-specific field {field.Name}";
            case "te" when field.Value != "trailers":
                return "te other than trailers";
        }

        return IsValidValue(field.Value) ? null : $"invalid value for {field.Name}";
    }

    /// <summary>Section 8.2.1: no upper case, no controls, space, DEL or non-ASCII in a name.</summary>
    private static bool IsValidName(string name)
    {
        if (name.Length == 0)
        {
            return false;
        }

        foreach (char c in name)
        {
            if (c <= 0x20 || c >= 0x7F || (c >= 'A' && c <= 'Z') || c == ':')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Section 8.2.1: no NUL, CR or LF, and no leading or trailing whitespace.</summary>
    private static bool IsValidValue(string value)
    {
        if (value.Length == 0)
        {
            return true;
        }

        if (value[0] is ' ' or '\t' || value[^1] is ' ' or '\t')
        {
            return false;
        }

        foreach (char c in value)
        {
            if (c is '\0' or '\r' or '\n' || c > 0xFF)
            {
                return false;
            }
        }

        return true;
    }
}
