import LiveProtocol
import Testing

@Suite("Login page")
struct LoginPageTests {
    static let ppftValue =
        "DfWZ7WKsRRpFw!9Lh*JUGFTvEExOy$Ao4!vV5Q6f6M2gnVmoWyKjsq4oN43l0D0RRKzqDHNCmiqZtFfP!mi4nm5yd4D4zSr*Ucq4HL9Ht2BhH1$"

    /// Shaped like the classic authorize page: single-quoted JavaScript in a ServerData object.
    static let classicPage = """
        <!DOCTYPE html><html dir="ltr" lang="en"><head><title>Sign in to your Microsoft account</title></head>
        <body><script type="text/javascript">var ServerData = {urlMsaSignUp:'https://signup.live.com/signup?lic=1',\
        urlPostMsa:'https://login.live.com/ppsecure/post.srf?msa=1',\
        urlPost:'https://login.live.com/ppsecure/post.srf?client_id=00000000480BC46C\\u0026response_type=token\\u0026contextid=5C4F\\u0026bk=1490000000',\
        iMaxStackForKnockoutAsyncComponents:10000,\
        sFTTag:'<input type="hidden" name="PPFT" id="i0327" value="\(ppftValue)"/>',\
        sErrTxt:'',urlResetPassword:'https://account.live.com/ResetPassword.aspx?wreply=x'};</script>
        <form name="f1" id="i0281" method="post" action="https://login.live.com/ppsecure/post.srf"></form></body></html>
        """

    @Test func classicPageYieldsPPFTAndPostURL() {
        let page = LoginPage.parse(Self.classicPage)
        #expect(page.ppft == Self.ppftValue)
        #expect(
            page.urlPost
                == "https://login.live.com/ppsecure/post.srf?client_id=00000000480BC46C&response_type=token&contextid=5C4F&bk=1490000000"
        )
        #expect(page.errorText == nil)
        #expect(!page.hasInteractiveForm)
    }

    @Test func jsonEscapedTagWithBareKey() {
        let html =
            #"<script>var ServerData={sFTTag:"<input type=\"hidden\" name=\"PPFT\" id=\"i0327\" value=\"\#(Self.ppftValue)\"\/>",urlPost:"https:\/\/login.live.com\/ppsecure\/post.srf?a=1\u0026b=2",sErrTxt:""};</script>"#
        let page = LoginPage.parse(html)
        #expect(page.ppft == Self.ppftValue)
        #expect(page.urlPost == "https://login.live.com/ppsecure/post.srf?a=1&b=2")
        #expect(page.errorText == nil)
    }

    @Test func jsonEscapedTagWithQuotedKeysAndUnicodeEscapes() {
        let html =
            #"<script>var ServerData = {"sFTTag":"\u003cinput type=\"hidden\" name=\"PPFT\" value=\"abc!*$def\"\/\u003e","urlPostMsa":"https:\/\/login.live.com\/ppsecure\/post.srf?x=1"};</script>"#
        let page = LoginPage.parse(html)
        #expect(page.ppft == "abc!*$def")
        #expect(page.urlPost == "https://login.live.com/ppsecure/post.srf?x=1")
    }

    @Test(arguments: [
        #"sFTTag:'<input type="hidden" name="PPFT" value="V1!*$"/>'"#,
        #"sFTTag:'<input name="PPFT" type="hidden" value="V1!*$" id="i0327"/>'"#,
        #"sFTTag:'<input value="V1!*$" id="i0327" type="hidden" name="PPFT">'"#,
        #"sFTTag:'<input type=\'hidden\' name=\'PPFT\' value=\'V1!*$\'/>'"#,
        #"sFTTag : "<INPUT TYPE=\"hidden\" NAME=\"PPFT\" ID=\"i0327\" VALUE=\"V1!*$\"\/>""#,
    ])
    func ppftWhateverTheAttributeOrder(_ snippet: String) {
        #expect(LoginPage.parse("<script>var o={a:1,\(snippet),b:2};</script>").ppft == "V1!*$")
    }

    @Test func plainHTMLFormIsAcceptedWhenThereIsNoScriptTag() {
        let html =
            #"<form><input type="hidden" name="PPSX" value="P"><input type="hidden" name="PPFT" value="plain&amp;1"></form>"#
        #expect(LoginPage.parse(html).ppft == "plain&1")
    }

    @Test func otherHiddenInputsAreNotTakenForPPFT() {
        let html = #"sFTTag:'<input type="hidden" name="canary" value="nope"/>'"#
        #expect(LoginPage.parse(html).ppft == nil)
        #expect(
            LoginPage.parse("<html><body>nothing</body></html>")
                == LoginPage(ppft: nil, urlPost: nil, errorText: nil, hasInteractiveForm: false))
    }

    @Test func urlPostIsPreferredOverUrlPostMsaAndNotConfusedWithIt() {
        let both = "{urlPostMsa:'https://a.example/msa',urlPost:'https://a.example/post'}"
        #expect(LoginPage.parse(both).urlPost == "https://a.example/post")
        let msaOnly = "{urlPostMsa:'https://a.example/msa',surlPost:'https://a.example/wrong'}"
        #expect(LoginPage.parse(msaOnly).urlPost == "https://a.example/msa")
        let emptyPost = "{urlPost:'',urlPostMsa:'https://a.example/msa'}"
        #expect(LoginPage.parse(emptyPost).urlPost == "https://a.example/msa")
    }

    @Test func errorTextIsUnescapedPastEscapedQuotes() {
        let html =
            #"<script>var ServerData={sErrTxt:'Your account or password is incorrect. If you don\'t remember your password, <a id=\"idA_IL_ForgotPassword0\" href=\"https://account.live.com/ResetPassword.aspx\">reset it now.<\/a>',sErrorCode:'80041012'};</script>"#
        let page = LoginPage.parse(html)
        #expect(
            page.errorText
                == #"Your account or password is incorrect. If you don't remember your password, <a id="idA_IL_ForgotPassword0" href="https://account.live.com/ResetPassword.aspx">reset it now.</a>"#
        )
        #expect(
            page.errorPlainText
                == "Your account or password is incorrect. If you don't remember your password, reset it now.")
    }

    @Test func errorTextHandlesEveryJavaScriptEscape() {
        let html = #"{sErrTxt:'a\\b \"q\" \'s\' line1\nline2 \u00e9\x41 \ud83d\ude00 \/ \u{1F600}'}"#
        #expect(LoginPage.parse(html).errorText == "a\\b \"q\" 's' line1\nline2 éA 😀 / 😀")
    }

    @Test func errorTextInDoubleQuotes() {
        #expect(
            LoginPage.parse(#"{"sErrTxt":"That Microsoft account doesn\u0027t exist."}"#).errorText
                == "That Microsoft account doesn't exist.")
    }

    @Test(arguments: ["{sErrTxt:''}", "{sErrTxt:\"\"}", "{sErrTxt:'  '}", "{a:1}", "{sErrTxt:'unterminated}"])
    func emptyOrAbsentErrorTextIsNotAnError(_ html: String) {
        #expect(LoginPage.parse(html).errorText == nil)
    }

    @Test func laterNonEmptyErrorTextWins() {
        #expect(LoginPage.parse("{sErrTxt:''};{sErrTxt:'Too many tries.'}").errorText == "Too many tries.")
    }

    @Test(arguments: [
        #"<form id="fmHF" name="fmHF" action="https://account.live.com/ar/cancel?ru=x" method="post" target="_top">"#,
        #"<form name='fmHF' method='post'>"#,
        #"{sHtml:"<form id=\"fmHF\" action=\"x\">"}"#,
        #"<form method="post" action="https://account.live.com/proofs/Add?mkt=en-US&uaid=1">"#,
        #"<form action="https://account.live.com/identity/confirm?mkt=en-US">"#,
        #"<div id="idDiv_Captcha"><img src="/captcha.srf"/></div>"#,
        #"{"arrUserProofs":[{"type":1,"display":"+XX XXXXXXX12"}]}"#,
    ])
    func pagesThatWantMoreAreInteractive(_ fragment: String) {
        #expect(LoginPage.parse("<html><body>\(fragment)</body></html>").hasInteractiveForm)
    }

    @Test func ordinaryPagesAreNotInteractive() {
        #expect(!LoginPage.parse(Self.classicPage).hasInteractiveForm)
        // "fmHF" that is not a form's id or name.
        #expect(!LoginPage.parse("<script>var fmHFState = 1;</script>").hasInteractiveForm)
        #expect(!LoginPage.parse("{sErrTxt:'Your account or password is incorrect.'}").hasInteractiveForm)
    }
}
