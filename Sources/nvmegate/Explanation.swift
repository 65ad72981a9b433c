#if canImport(Glibc)
import Glibc
#endif
import NVMeGate

/// A verdict explained, as `policy explain` prints it.
struct Explanation {
    var reason: Reason
    var detail: String
    var command: String
    var handle: String
    /// The caller's tenant, nil without one.
    var tenant: String?
    /// The "Tenant:" line, nil for a policy without tenants.
    var tenantText: String?
    var effects: [String]
    var effectsOrigin: String
    var rule: String
    var policy: String

    var verdict: String {
        reason.isAllowed ? "allowed" : "refused (\(errnoName(reason.errno)), errno \(reason.errno))"
    }

    var text: String {
        """
        Verdict:  \(verdict)
        Reason:   \(reason.code)
        Detail:   \(detail)
        Command:  \(command)
        Handle:   \(handle)\(tenantText.map { "\nTenant:   " + $0 } ?? "")
        Effects:  \(effects.isEmpty ? "none" : effects.joined(separator: " ")) (\(effectsOrigin))
        Rule:     \(rule)
        Policy:   \(policy)
        """
    }

    /// One JSON object: the `policy check` verdict's keys first, then the explanation's.
    var json: String {
        var out: [UInt8] = []
        out.appendASCII(#"{"allow":"#)
        out.appendASCII(reason.isAllowed ? "true" : "false")
        out.appendASCII(#","errno":"#)
        out.appendDecimal(reason.errno)
        for (key, value) in [("reason", reason.code), ("detail", detail), ("verdict", verdict), ("command", command),
                             ("handle", handle)] {
            out.append(UInt8(ascii: ","))
            out.appendJSONString(key)
            out.append(UInt8(ascii: ":"))
            out.appendJSONString(value)
        }
        out.appendASCII(#","tenant":"#)
        if let tenant { out.appendJSONString(tenant) } else { out.appendASCII("null") }
        out.appendASCII(#","effects":["#)
        for (index, name) in effects.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.appendJSONString(name)
        }
        out.append(UInt8(ascii: "]"))
        for (key, value) in [("effects_source", effectsOrigin), ("rule", rule), ("policy", policy)] {
            out.append(UInt8(ascii: ","))
            out.appendJSONString(key)
            out.append(UInt8(ascii: ":"))
            out.appendJSONString(value)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }
}

/// "EACCES": the symbolic name of an errno the gate returns.
func errnoName(_ code: Int32) -> String {
    switch code {
    case EACCES: "EACCES"
    case EINVAL: "EINVAL"
    case ENOTTY: "ENOTTY"
    case EFAULT: "EFAULT"
    case EBADF: "EBADF"
    default: "errno \(code)"
    }
}
