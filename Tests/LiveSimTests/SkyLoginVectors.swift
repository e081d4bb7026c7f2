@testable import LiveSim

/// The SkyLogin test vectors of the notes (§8, `vectors.json`) that livesim's half uses, as given
/// there: hex (line breaks ignored) unless the name says Base64.
enum SkyVectors {
    /// client.n
    static let clientN = """
        afdb2a302d5dbb35cfbfae9f91ddcbf7e900e42256312bb7d5c2bdba2834a18453e125f8113bfbc2bf14db54b08d689ff374f9c4
        27fffbd23096cd41bc32737b478551002601732290f535138532aa40bc5190111006ac738daedb31ffdbf322e61538454d8f1563
        85cc4ad2c34f3031abf3fa14b5cae9ec66fbfe17b9a462f9
        """
    /// client.d
    static let clientD = """
        1c737de8db7e1daac018c7fcc311ba4d3aa24d468ce159ac5d662b61f1dd4a0069bdb471e4ffea64809bb43c886fe86c706c0d78
        c1ebf566f53b80abd0f1eca2d1a18677b0e635707e7ebd0525f443df4d2f05be12e68adaa04da0938d73bed3e8fc0443905f96c3
        11e3a83a57356c29fb0cf8f75f021d089210451a91c9e1fd
        """
    /// signer.n
    static let signerN = """
        d80f4e38cdd6782752a7bc3264a6c55298ad809b9ae0d8cf6a33f8a3523935c0d6ca7abf9c5a4de897e720c22e051935e9f8ada6
        ce625d1fb7027e9bb6fc0123c456642ba1934041c42e0bf538a4b6e1ec3ad188199741c403e7c3b928d587c772da0f09bb456b26
        8ca8dc1b7cd3cc959854e435811c7fba1d7f38d413a56076f77fbcfb3dcd86a3e9fa124207da6b1240db77037b035e987780e1df
        8febc2c1a3590ef3182858b487fa2bb5997181261adbe30bcafb9649bf067ecdec79918ad7ef31362149624f4f5bbe367f5aefcb
        54b3f017b3996625d5e19b7171656737ad5660398292573b3e615b6edf0fc1100763375488dee2ab9e7e559233cf2f73
        """
    /// signer.d
    static let signerD = """
        a644d10b81cc24570e92aa8f954989dc9046250c9a59a23fac1926a478e831e79ee3df2689aa2cfe6bb7a04c0ea239ce75a9bbe8
        fc365237cfdc89964771136774f68ecbcce1c6b755c3a1cc2ab50750413cda76844b147f460a1b62e87bbaabd044e301b82e29d1
        56b9b3f92b4ccac9ec9a97ac5d199369a4bd7cfc27ca42ba9fbc4ee80e083a474c5cfa56a84711ce7648c63d3743794758cd43aa
        df835f0a68502fcb1aa0e386f2d04eafcee611fc32ffac2c98e26f8fa8708a53fc0feae45f66d7b9036a63015558b627162a76c8
        0a6b098c6df47b1e8c770fd33ffcd13fa7d8d8d3430ce4a9d4e0f91a7360986ec44c95c5768bdb255d42a162261b4851
        """
    /// server.n
    static let serverN = """
        ea198988d3b31bc990ce30ea79f1478812723d2cd034023006929383e59bff7a4a33c2723974ff6298259e8e268125776e1fcec4
        8124f379edd4a73038fcc1388bbf6fc7fc6b243a44694eb61c9bf606ea1e6252e30d98133f5d1d39ff3c046d6c22c1eaf4ecb3aa
        d2b5b1bd75c9e09233a715631f51a949e7227544f22cdf1ae53bcf3f752af8a2c32275cc201d4b87ba05fd2582d4f31769d2097b
        5271329a104f65fb29aba6e575d72fc885b753ab6ee4f1bddd4500f8d513ed1fc5a8296d
        """
    /// server.d
    static let serverD = """
        1bf8f735314eaa9858443b1619821a31093b3b521a82cc6c1eacef1188a32e50d782fdce164d83a2ad59796bb4f023a0f4b8ba45
        42c53e8ea83b8bcab85483661554c7af96dada9657cc598a6b3abb9831eb75863ff944ddafe9996f6faf253c0f7589f27db069c7
        554fb541ee54fbb968adb21e7e77bcb61469a8e8e89cc8faad05eda7f368d43450e620a8c16b8cc3287425491eeec1d514747aa3
        9ecb59cd3b1da04b15f3be52c19a2295b02cd4779f05779549d5c99dfb761d4e0b37f925
        """
    /// V1.cred_plain
    static let v1CredPlain = """
        4103030074657374757365720004018001afdb2a302d5dbb35cfbfae9f91ddcbf7e900e42256312bb7d5c2bdba2834a18453e125
        f8113bfbc2bf14db54b08d689ff374f9c427fffbd23096cd41bc32737b478551002601732290f535138532aa40bc5190111006ac
        738daedb31ffdbf322e61538454d8f156385cc4ad2c34f3031abf3fa14b5cae9ec66fbfe17b9a462f90004c09dd810
        """
    /// V1.cred_block
    static let v1CredBlock = """
        4bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
        bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbba4103030074657374757365720004018001afdb2a
        302d5dbb35cfbfae9f91ddcbf7e900e42256312bb7d5c2bdba2834a18453e125f8113bfbc2bf14db54b08d689ff374f9c427fffb
        d23096cd41bc32737b478551002601732290f535138532aa40bc5190111006ac738daedb31ffdbf322e61538454d8f156385cc4a
        d2c34f3031abf3fa14b5cae9ec66fbfe17b9a462f90004c09dd8109e4a501e814eccf7d0a4f5f34b689ff48c899824bc
        """
    /// V1.creds
    static let v1Creds = """
        000000017349b9d52831f974a3cfccba3843832917c757de38bb88bda0999cae30476a809ce84fbb3eb5169fddf46ad304a2a03c
        cbd7dbf3435dcbadcff1fd2148ee7d93c582261e37462698714c28c37eee7fb6a51684ee53d8e95f2ac74e317edde411392ea62f
        935997242d0e0294d3aa98491c47f02ae665ca26e2ecdcecd6eb6372c31694b6a5022348ce813b2f73ad74c5245deaf8e2d60177
        0321ab346a08fc8691aa75434a87ee9c489588e8c30638c7241d3aa1548b45d6abaf01bd235795210bde022e26d749c1614d808e
        190e74dae4ded7c4d6519fcf98de209eb923670badb4338a5465b29fc759b324edc55548ef105cfdf3befd552e3e8dac851347fb
        """
    /// V2.b64
    static let v2Base64 = """
        AAAAAXNJudUoMfl0o8/MujhDgykXx1feOLuIvaCZnK4wR2qAnOhPuz61Fp/d9GrTBKKgPMvX2/NDXcutz/H9IUjufZPFgiYeN0YmmHFM
        KMN+7n+2pRaE7lPY6V8qx04xft3kETkupi+TWZckLQ4ClNOqmEkcR/Aq5mXKJuLs3OzW62NywxaUtqUCI0jOgTsvc610xSRd6vji1gF3
        AyGrNGoI/IaRqnVDSofunEiViOjDBjjHJB06oVSLRdarrwG9I1eVIQveAi4m10nBYU2AjhkOdNrk3tfE1lGfz5jeIJ65I2cLrbQzilRl
        sp/HWbMk7cVVSO8QXP3zvv1VLj6NrIUTR/s=
        """
    /// V3.m
    static let v3M = """
        501ab857100e785305f163aa71be4e3f54e3b73e57532d536563757265436f6e766572736174696f6e53455353494f4e204b4559
        20544f4b454e35643637396666382d356266342d666466662d616237362d643137633931343133643738
        """
    /// V3.block
    static let v3Block = """
        4bbbbbbbbbbbbbbbbbbbbbbbba501ab857100e785305f163aa71be4e3f54e3b73e57532d536563757265436f6e76657273617469
        6f6e53455353494f4e204b455920544f4b454e35643637396666382d356266342d666466662d616237362d643137633931343133
        643738c38f5488d9b4917582897343a6a52bcb0d11b255bc
        """
    /// V3.sig
    static let v3Sig = """
        ae2335c6e7518c1c15f3f827023f871bd90f23ad77dc96422cdb02e1b9a6d63bc5dfad29a109fe9901174355ccbed37c37f8841d
        b544a7645adb4cf35cf7ed35831dc3215ee18fad8ae98d1969018cb396b896056d89450faef3b427d182b36d9de54ce291fd3b2e
        1cab2ba8154d03802bb98a95b4d614538e1af4e319e89760
        """
    /// V3.uic_bytes
    static let v3UICBytes = """
        00000104000000017349b9d52831f974a3cfccba3843832917c757de38bb88bda0999cae30476a809ce84fbb3eb5169fddf46ad3
        04a2a03ccbd7dbf3435dcbadcff1fd2148ee7d93c582261e37462698714c28c37eee7fb6a51684ee53d8e95f2ac74e317edde411
        392ea62f935997242d0e0294d3aa98491c47f02ae665ca26e2ecdcecd6eb6372c31694b6a5022348ce813b2f73ad74c5245deaf8
        e2d601770321ab346a08fc8691aa75434a87ee9c489588e8c30638c7241d3aa1548b45d6abaf01bd235795210bde022e26d749c1
        614d808e190e74dae4ded7c4d6519fcf98de209eb923670badb4338a5465b29fc759b324edc55548ef105cfdf3befd552e3e8dac
        851347fbae2335c6e7518c1c15f3f827023f871bd90f23ad77dc96422cdb02e1b9a6d63bc5dfad29a109fe9901174355ccbed37c
        37f8841db544a7645adb4cf35cf7ed35831dc3215ee18fad8ae98d1969018cb396b896056d89450faef3b427d182b36d9de54ce2
        91fd3b2e1cab2ba8154d03802bb98a95b4d614538e1af4e319e89760
        """
    /// V3.b64
    static let v3Base64 = """
        AAABBAAAAAFzSbnVKDH5dKPPzLo4Q4MpF8dX3ji7iL2gmZyuMEdqgJzoT7s+tRaf3fRq0wSioDzL19vzQ13Lrc/x/SFI7n2TxYImHjdG
        JphxTCjDfu5/tqUWhO5T2OlfKsdOMX7d5BE5LqYvk1mXJC0OApTTqphJHEfwKuZlyibi7Nzs1utjcsMWlLalAiNIzoE7L3OtdMUkXer4
        4tYBdwMhqzRqCPyGkap1Q0qH7pxIlYjowwY4xyQdOqFUi0XWq68BvSNXlSEL3gIuJtdJwWFNgI4ZDnTa5N7XxNZRn8+Y3iCeuSNnC620
        M4pUZbKfx1mzJO3FVUjvEFz98779VS4+jayFE0f7riM1xudRjBwV8/gnAj+HG9kPI6133JZCLNsC4bmm1jvF360poQn+mQEXQ1XMvtN8
        N/iEHbVEp2Ra20zzXPftNYMdwyFe4Y+tiumNGWkBjLOWuJYFbYlFD67ztCfRgrNtneVM4pH9Oy4cqyuoFU0DgCu5ipW01hRTjhr04xno
        l2A=
        """
    /// V3.b64_openssl_wrapped
    static let v3Base64Wrapped = """
        AAABBAAAAAFzSbnVKDH5dKPPzLo4Q4MpF8dX3ji7iL2gmZyuMEdqgJzoT7s+tRaf
        3fRq0wSioDzL19vzQ13Lrc/x/SFI7n2TxYImHjdGJphxTCjDfu5/tqUWhO5T2Olf
        KsdOMX7d5BE5LqYvk1mXJC0OApTTqphJHEfwKuZlyibi7Nzs1utjcsMWlLalAiNI
        zoE7L3OtdMUkXer44tYBdwMhqzRqCPyGkap1Q0qH7pxIlYjowwY4xyQdOqFUi0XW
        q68BvSNXlSEL3gIuJtdJwWFNgI4ZDnTa5N7XxNZRn8+Y3iCeuSNnC620M4pUZbKf
        x1mzJO3FVUjvEFz98779VS4+jayFE0f7riM1xudRjBwV8/gnAj+HG9kPI6133JZC
        LNsC4bmm1jvF360poQn+mQEXQ1XMvtN8N/iEHbVEp2Ra20zzXPftNYMdwyFe4Y+t
        iumNGWkBjLOWuJYFbYlFD67ztCfRgrNtneVM4pH9Oy4cqyuoFU0DgCu5ipW01hRT
        jhr04xnol2A=
        """ + "\n"
    /// V4.session_key
    static let v4SessionKey = """
        012947a6688daa93d451fc87f10ce471b0f044b4b9f2989d5590c3e6a7bf17c6648b05f0df7db67603c78d719ad04be3f79e4d3b
        ee3726699ef99267847e72b7de96611d435f08b10a884206e154b5faa9d979767298ea303e68b73bdb58e2dff3f32e2a38183519
        374e244f3a40dcc553cdebd669dea3a0e4df499d5b9b0ee54dd65b7ddfdaaaae18e1db3d1508d6024036de396f22ef8f796bfdb7
        b162f91a57fff4ebd422b29f7214a9b0daef1318775aadea9fc845002225249d8893057e
        """
    /// V4.aes256_key
    static let v4AESKey = "4f3c4d38b941bea2f16809ec4a4a34110058f8e24f9c88e0d3e67d08662306e9"
    /// V4.record1
    static let v4Record1 = """
        16030100cd4103000980400408c0018fcebf73e9ddccf9fdd765902ac322d7317b4e2bd2ad303479548272d27ec1fc69455dca1c
        14cbb8f9574f0a8c39f668431612f9a67fa71dc74af2ba0ead293aa5f815600d2f221fb7ed127fb8b68f569b44b932415f916a22
        e9a96d4e0c9e34b4df803418238bbe92235f6b7cf1fad9099743d2c5911544e293eb97012aa557b8d738d660283f1fbd45643a71
        ff0691913389f8e7981f9f23cc9938df2e352dc6859ddf6689f1261ef5fe1f3843604bfe8b99fca347e0e8488ab6acea83bb3c00
        0c01
        """
    /// V4.record2_plain
    static let v4Record2Plain = """
        4104000099270002010304746573747573657200040510043577a7ecdb5b9c2a4bfeabe4ff2141410604218001afdb2a302d5dbb
        35cfbfae9f91ddcbf7e900e42256312bb7d5c2bdba2834a18453e125f8113bfbc2bf14db54b08d689ff374f9c427fffbd23096cd
        41bc32737b478551002601732290f535138532aa40bc5190111006ac738daedb31ffdbf322e61538454d8f156385cc4ad2c34f30
        31abf3fa14b5cae9ec66fbfe17b9a462f901310123456789abcdef0336656e0006330591a2c48801a2c4889102b3e6cc9903c488
        91a20400030d302f372e34342e302e31303400000e818080f807
        """
    /// V4.record2
    static let v4Record2 = """
        17030100ec7d87ac5e125b0dba565c1b6d0974d25d8ad825a6daa87890aaa5e351191e2428ce1ecbbfcac9e992dc287b989ad264
        8c39c7ef713270d636de0a99a6fb737567d2349c42c7687ab91d9b78088884873343a55aab5d478184d534a349e1e5afec55416e
        17c182279c3e448ad6c04166460a281bfcf1f14df6d90db218a24283248d9e67ca8320a80829782ae14587d946b84b37b86603c6
        d6e56b25fc3cb6440fa38eaeff4e51900251f9239034925977881ee3f83e91053503345ce82dade4264db2cf81f958290a2f565c
        dd446b29efe896a44cd71cf31c3e49b1d8c9f05f16eda7f6454b6513d9f9b14edd
        """
    /// V4.oauth_record2_plain
    static let v4OAuthRecord2Plain = """
        41020000a32700023d410804218001afdb2a302d5dbb35cfbfae9f91ddcbf7e900e42256312bb7d5c2bdba2834a18453e125f811
        3bfbc2bf14db54b08d689ff374f9c427fffbd23096cd41bc32737b478551002601732290f535138532aa40bc5190111006ac738d
        aedb31ffdbf322e61538454d8f156385cc4ad2c34f3031abf3fa14b5cae9ec66fbfe17b9a462f901310123456789abcdef063305
        91a2c48801a2c4889102b3e6cc9903c48891a204000336656e00013e00000000000003e7033d743d4558414d504c452d4d42495f
        53534c2d544f4b454e00030d302f372e34342e302e31303400000e818080f807
        """
    /// V5.reply_plain
    static let v5ReplyPlain = """
        41010001e820410104248402000000017349b9d52831f974a3cfccba3843832917c757de38bb88bda0999cae30476a809ce84fbb
        3eb5169fddf46ad304a2a03ccbd7dbf3435dcbadcff1fd2148ee7d93c582261e37462698714c28c37eee7fb6a51684ee53d8e95f
        2ac74e317edde411392ea62f935997242d0e0294d3aa98491c47f02ae665ca26e2ecdcecd6eb6372c31694b6a5022348ce813b2f
        73ad74c5245deaf8e2d601770321ab346a08fc8691aa75434a87ee9c489588e8c30638c7241d3aa1548b45d6abaf01bd23579521
        0bde022e26d749c1614d808e190e74dae4ded7c4d6519fcf98de209eb923670badb4338a5465b29fc759b324edc55548ef105cfd
        f3befd552e3e8dac851347fb
        """
    /// V5.reply_record
    static let v5ReplyRecord = """
        17030101127e4d783a5068dc6b57071199878f8d1c8deb05dedf1af9c3390ba47948e871aee05ad4fc9ac2a0169c3d2714de15d3
        7abdd549bfe805b4246ff5ba4f688f5afa3e2665e661614b8d56857e2c2b60e23189303c219725a4221da0dc2b67d4d844ab5dc2
        392ae4d799b459aadad848aab9406233433576f70ed93dc4b9cf87187c237beed9304fa8dc10babd5f566221e351334ffcfe9c2e
        b303d54ea85a4711a9b5da1f794a13cb4b20e0499808fdf79fa6c9e1a37bd26d1113a755fea953de94f9a5d2105e10f0888e794a
        623729aae886ddbe4442a38b6a8f9d483b3ac884571af60e8a8b5644ea086702e3f39e9f795a34e6f35609f3edf97da308af753a
        ae7ba592c5efd90e791f2b7003dfbef382b5e7
        """
    /// V6.fail_plain
    static let v6FailPlain = "41010001e9204100"
    /// V6.fail_record
    static let v6FailRecord = "170301000a7e4d783a5168dc6a0c68"
    static let nonce = "5d679ff8-5bf4-fdff-ab76-d17c91413d78"

    static func bytes(_ hex: String) -> [UInt8] { SkyHex.decode(hex) ?? [] }

    /// A Base64 vector without its line breaks.
    static func unwrapped(_ text: String) -> String { text.filter { !$0.isNewline } }
}
