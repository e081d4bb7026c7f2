import Foundation

/// The texts livesim shows, unescaped. Tests compare a client's error message with these.
public enum LiveSimText {
    public static let wrongPassword =
        "Your account or password is incorrect. If you don't remember your password, reset it now."
    public static let unknownAccount =
        "That Microsoft account doesn't exist. Enter a different account or get a new one."
    public static let sessionExpired =
        "Your session has timed out. To sign in again, please refresh the page and try again."
    public static let badRedirectURI =
        "The provided value for the input parameter redirect_uri is not valid. The expected value is https://login.live.com/oauth20_desktop.srf or a URL which matches the redirect URI registered for this client application."
    public static let invalidGrant =
        "The user could not be authenticated or the grant is expired. The user must first sign in and if needed grant the client application access to the requested scope."
    public static let rateLimitBody = #"{"errorCode":803,"message":"Login Rate limit exceeded"}"#
    public static let skypetokenFailure = "Authentication failed. Bad username or password."
}

/// Pages, JSON and SOAP written from livesim's own templates, shaped like the real captures.
/// (The client side has its own parsers; the two must not share code.)
enum Templates {
    /// A JavaScript single-quoted string literal body.
    static func jsSingleQuoted(_ text: String) -> String {
        var out = ""
        for ch in text.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "<": out += "\\u003c"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    static func htmlAttribute(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func xmlEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// The authorize page: PPFT in JavaScript, urlPost, sErrTxt (empty unless an error is shown).
    static func loginPage(style: PageStyle, urlPost: String, ppft: String, errorText: String?) -> String {
        let ftTag: String
        switch style {
        case .classic:
            ftTag = "sFTTag:'<input type=\"hidden\" name=\"PPFT\" id=\"i0327\" value=\"\(ppft)\"/>'"
        case .escaped:
            ftTag = "sFTTag:\"<input type=\\\"hidden\\\" name=\\\"PPFT\\\" id=\\\"i0327\\\" value=\\\"\(ppft)\\\"\\/>\""
        }
        let err = jsSingleQuoted(errorText ?? "")
        return """
            <!DOCTYPE html><html dir="ltr" lang="en"><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"/>\
            <meta name="viewport" content="width=device-width, initial-scale=1.0"/><title>Sign in to your Microsoft account</title>\
            <script type="text/javascript">var ServerData = {\(ftTag),urlPost:'\(jsSingleQuoted(urlPost))',\
            sErrTxt:'\(err)',sRemoteConnectAppName:'',iMaxStackForKnockoutAsyncComponents:10000,\
            fShowButtons:true,urlCDN:'https://logincdn.msauth.net/16.000/',urlFooterHelp:'',\
            fIsHTML5:true,iPawnIcon:0,sPOST_Username:'',sFT:'',urlMsaSignUp:'',\
            fEnableLivePreview:true,sCtx:'',fIsFidoSupported:false,iLoginMode:0};</script>\
            <script type="text/javascript">!function(t,e){var n=t.ServerData;n.fIsHTML5=!0}(this);</script>\
            </head><body data-bind="defineGlobals: ServerData" class="cb"><div><noscript>JavaScript required to sign in</noscript>\
            </div><form name="f1" id="i0281" novalidate="novalidate" spellcheck="false" method="post" autocomplete="off"></form>\
            </body></html>
            """
    }

    /// The two-factor proofs page: no sErrTxt, no redirect, a form that wants more.
    static func proofsPage(host: String, login: String) -> String {
        """
        <!DOCTYPE html><html dir="ltr" lang="en"><head><title>Help us protect your account</title></head>\
        <body><form name="fmHF" id="fmHF" action="https://\(host)/proofs/Verify?mkt=en-US&amp;uiflavor=host" method="post" target="_top">\
        <input type="hidden" name="login" id="login" value="\(htmlAttribute(login))"/>\
        <input type="hidden" name="proofType" id="proofType" value="SMS"/>\
        <div id="idDiv_SAOTCS_Title">Verify your identity</div>\
        <div id="idDiv_SAOTCS_Description">We'll send a code to your phone. Enter it to sign in.</div></form></body></html>
        """
    }

    static func abusePage() -> String {
        """
        <!DOCTYPE html><html><head><title>Your account has been locked</title></head><body>\
        <h1>Your account has been locked</h1><p>We've detected some activity that violates our Microsoft Services Agreement and have locked your account.</p>\
        </body></html>
        """
    }

    static let desktopPage = "<!DOCTYPE html><html><head><title></title></head><body></body></html>"

    static func rfc3339(_ date: Date) -> String {
        var tm = tm()
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        gmtime_r(&t, &tm)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
            Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
    }

    /// A SOAP 1.1 fault as RST.srf sent it.
    static func rstFault(
        faultcode: String, faultstring: String, reqstatus: String, errorValue: String?, redirectURL: String?
    ) -> String {
        let detail: String
        if let redirectURL {
            detail = "<psf:redirectUrl>\(xmlEscape(redirectURL))</psf:redirectUrl>"
        } else {
            detail = """
                <S:detail><psf:error><psf:value>\(errorValue ?? reqstatus)</psf:value>\
                <psf:internalerror><psf:code>\(errorValue ?? reqstatus)</psf:code>\
                <psf:text>\(xmlEscape(faultstring))</psf:text></psf:internalerror></psf:error></S:detail>
                """
        }
        return """
            <?xml version="1.0" encoding="utf-8"?>
            <S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault">
            \t<S:Header>
            \t\t<psf:pp xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault">
            \t\t\t<psf:serverVersion>1</psf:serverVersion>
            \t\t\t<psf:authstate>0x80048800</psf:authstate>
            \t\t\t<psf:reqstatus>\(reqstatus)</psf:reqstatus>
            \t\t\t<psf:serverInfo Path="Live1" RollingUpgradeState="ExclusiveNew" LocVersion="0" ServerTime="\(rfc3339(Date()))">livesim</psf:serverInfo>
            \t\t\t<psf:cookies/>
            \t\t\t<psf:response/>
            \t\t</psf:pp>
            \t</S:Header>
            \t<S:Body>
            \t\t<S:Fault>
            \t\t\t<faultcode>\(faultcode)</faultcode>
            \t\t\t<faultstring>\(xmlEscape(faultstring))</faultstring>
            \t\t\t\(detail)
            \t\t</S:Fault>
            \t</S:Body>
            </S:Envelope>
            """
    }
}
