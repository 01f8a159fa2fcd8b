import Foundation
import KinemaCore
import Testing

@Suite struct WebhookSignatureTests {
    /// The Standard Webhooks specification's own example: secret, id, timestamp, body and the signature it gives.
    @Test func theStandardsExampleSignsAsPublished() throws {
        let secret = try #require(WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let body = Array(#"{"test": 2432232314}"#.utf8)
        let signature = WebhookSignature.sign(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body, secret: secret)
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(WebhookSignature.verify(header: signature, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body, secret: secret))
        // Any change to id, timestamp or body breaks it.
        #expect(!WebhookSignature.verify(header: signature, id: "msg_other", timestamp: 1_614_265_330, body: body, secret: secret))
        #expect(!WebhookSignature.verify(header: signature, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_331, body: body, secret: secret))
        #expect(
            !WebhookSignature.verify(
                header: signature, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body + [0x20], secret: secret))
    }

    @Test func aRotationHeaderCarriesBothAndEachVerifies() throws {
        let new = WebhookSecret.generate()
        let old = WebhookSecret.generate()
        #expect(new != old)
        #expect(new.text.hasPrefix("whsec_") && new.key.count == 32)
        #expect("\(new)" == "whsec_…")
        let body = Array("{}".utf8)
        let header = WebhookSignature.header(id: "msg_1", timestamp: 5, body: body, secrets: [new, old])
        #expect(header.split(separator: " ").count == 2)
        #expect(WebhookSignature.verify(header: header, id: "msg_1", timestamp: 5, body: body, secret: new))
        #expect(WebhookSignature.verify(header: header, id: "msg_1", timestamp: 5, body: body, secret: old))
        #expect(!WebhookSignature.verify(header: header, id: "msg_1", timestamp: 5, body: body, secret: WebhookSecret.generate()))
    }

    @Test func secretsMustBeWhsecAndBase64OfSixteenBytesOrMore() {
        #expect(WebhookSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == nil)
        #expect(WebhookSecret("whsec_") == nil)
        #expect(WebhookSecret("whsec_not base64!") == nil)
        #expect(WebhookSecret("whsec_" + Data(repeating: 1, count: 15).base64EncodedString()) == nil)
        #expect(WebhookSecret("whsec_" + Data(repeating: 1, count: 16).base64EncodedString()) != nil)
    }

    @Test func webhookURLsAreHTTPWithAHostAndNoCredentials() {
        for good in ["https://hooks.example/x", "http://127.0.0.1:9000/hook?x=1", "https://[::1]/a", "HTTPS://Example.COM"] {
            #expect(RequestValidator.webhookURLProblem(good) == nil, "\(good)")
        }
        let long = "https://a.example/" + String(repeating: "x", count: RequestValidator.maxWebhookURLLength)
        for (bad, why) in [
            ("", "is empty"), ("ftp://a.example/x", "must use http or https"), ("https:///path", "has no host"),
            ("https://user:pw@a.example/", "credentials"), ("https://a.example/ x", "spaces"), ("hooks.example/x", "not a URL"),
            (long, "longer than 2048"), ("javascript:alert(1)", "must use http or https"),
        ] {
            #expect(
                RequestValidator.webhookURLProblem(bad)?.contains(why) == true, "\(bad): \(RequestValidator.webhookURLProblem(bad) ?? "accepted")")
        }
    }
}
