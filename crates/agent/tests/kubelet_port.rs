//! The agent's kubelet port is the kubelet's: HTTPS only, and every request authenticated
//! (client certificate of the cluster CA, or a bearer token the API server reviews) and
//! authorized by the API server (SubjectAccessReview on `nodes/<subresource>`), with the
//! kubelet's 401 and 403 answers. Every wait polls with a deadline.

mod common;

use common::*;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, PostParams};
use pernode_apiserver::node_proxy::KubeletClient;
use serde_json::json;

/// `method path` on the kubelet port at 127.0.0.1:`port` through `client`'s TLS, with an
/// optional bearer token: the status and body.
async fn ask(
    client: &KubeletClient,
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let tls = client
        .connect("127.0.0.1", tcp)
        .await
        .expect("TLS handshake");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("HTTP handshake");
    tokio::spawn(conn);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", format!("127.0.0.1:{port}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn create<K>(client: &kube::Client, object: serde_json::Value)
where
    K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let object: K = serde_json::from_value(object).expect("object literal");
    Api::<K>::all(client.clone())
        .create(&PostParams::default(), &object)
        .await
        .expect("created");
}

/// A ClusterRole `name` with `rules`, bound to `subject`.
async fn grant(
    client: &kube::Client,
    name: &str,
    rules: serde_json::Value,
    subject: serde_json::Value,
) {
    create::<ClusterRole>(client, json!({"metadata": {"name": name}, "rules": rules})).await;
    create::<ClusterRoleBinding>(
        client,
        json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [subject],
        }),
    )
    .await;
}

/// Waits until the API server's RBAC allows `user` `verb` on `nodes/subresource` (its policy
/// follows the store's writes), so the kubelet's first review is not a cached early denial.
async fn until_allowed(
    client: &kube::Client,
    user: &str,
    groups: &[&str],
    verb: &str,
    subresource: &str,
) {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let review: SubjectAccessReview = serde_json::from_value(json!({"spec": {
        "user": user, "groups": groups,
        "resourceAttributes": {"verb": verb, "resource": "nodes", "subresource": subresource, "name": "k1"},
    }}))
    .expect("literal");
    eventually("RBAC allows the grant", || async {
        let answer = reviews.create(&PostParams::default(), &review).await.ok()?;
        answer.status.filter(|s| s.allowed).map(|_| ())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kubelet_port_lets_in_only_whom_the_api_server_authorizes() {
    let c = cluster().await;
    let root = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(root.path().to_path_buf());
    let agent = start(&c.client, options("k1", root.path()));
    let nodes: Api<Node> = Api::all(c.client.clone());
    let port = eventually("the node reports its kubelet port", || async {
        let node = nodes.get_opt("k1").await.ok().flatten()?;
        let port = node.status?.daemon_endpoints?.kubelet_endpoint?.port;
        u16::try_from(port).ok().filter(|p| *p > 0)
    })
    .await;
    // The self-signed serving certificate is kept for the next start.
    assert!(root.path().join("pki/kubelet.crt").is_file());
    assert!(root.path().join("pki/kubelet.key").is_file());

    // Plain HTTP gets Go's 400: the port speaks TLS only.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        tcp.write_all(b"GET /stats/summary HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tcp.read_to_end(&mut answer),
        )
        .await;
        assert_eq!(
            String::from_utf8_lossy(&answer),
            "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
        );
    }

    // No credentials, or a certificate of another CA: 401.
    let nobody = KubeletClient::default();
    assert_eq!(
        ask(&nobody, port, "GET", "/stats/summary", None).await,
        (401, "Unauthorized".to_string())
    );
    let stranger = {
        let other = pernode_auth::pki::ClusterCa::generate().expect("CA");
        let cert = other
            .issue_client("system:admin", &["system:masters"], 1)
            .expect("cert");
        KubeletClient::new(Some((&cert.cert_pem, &cert.key_pem)), None).expect("client")
    };
    assert_eq!(
        ask(&stranger, port, "GET", "/stats/summary", None).await.0,
        401
    );
    assert_eq!(
        ask(&nobody, port, "GET", "/stats/summary", Some("not-a-token"))
            .await
            .0,
        401
    );

    // Authenticated but not authorized: the kubelet's 403 naming what was asked.
    let eve = kubelet_client_as("eve", &[]);
    assert_eq!(
        ask(&eve, port, "GET", "/stats/summary", None).await,
        (
            403,
            "Forbidden (user=eve, verb=get, resource=nodes, subresource=stats)".to_string()
        )
    );
    assert_eq!(
        ask(&eve, port, "POST", "/exec/default/p/c?command=id", None).await,
        (
            403,
            "Forbidden (user=eve, verb=create, resource=nodes, subresource=proxy)".to_string()
        )
    );

    // RBAC on nodes/stats lets a user read stats, and nothing else of the kubelet.
    grant(
        &c.client,
        "stats-reader",
        json!([{"apiGroups": [""], "resources": ["nodes/stats"], "verbs": ["get"]}]),
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "stats-reader"}),
    )
    .await;
    until_allowed(&c.client, "stats-reader", &[], "get", "stats").await;
    let reader = kubelet_client_as("stats-reader", &[]);
    let (code, body) = ask(&reader, port, "GET", "/stats/summary", None).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"nodeName\":\"k1\""), "{body}");
    assert_eq!(
        ask(&reader, port, "GET", "/containerLogs/default/p/c", None)
            .await
            .0,
        403
    );

    // The API server's own kubelet client certificate is bound to system:kubelet-api-admin.
    let apiserver = kubelet_client_as(pernode_apiserver::node_proxy::KUBELET_CLIENT_USER, &[]);
    assert_eq!(ask(&apiserver, port, "GET", "/metrics", None).await.0, 200);

    // A service account's bearer token, reviewed by the API server (TokenReview).
    let accounts: Api<ServiceAccount> = Api::namespaced(c.client.clone(), "default");
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "scraper"}})).expect("literal");
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("service account");
    grant(
        &c.client,
        "scraper-metrics",
        json!([{"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]}]),
        json!({"kind": "ServiceAccount", "name": "scraper", "namespace": "default"}),
    )
    .await;
    until_allowed(
        &c.client,
        "system:serviceaccount:default:scraper",
        &["system:serviceaccounts"],
        "get",
        "metrics",
    )
    .await;
    let token = accounts
        .create_token_request("scraper", &PostParams::default(), &TokenRequest::default())
        .await
        .expect("token")
        .status
        .expect("token status")
        .token;
    let (code, body) = ask(&nobody, port, "GET", "/metrics", Some(&token)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        ask(&nobody, port, "GET", "/stats/summary", Some(&token)).await,
        (
            403,
            "Forbidden (user=system:serviceaccount:default:scraper, verb=get, resource=nodes, subresource=stats)"
                .to_string()
        )
    );
    agent.abort();
}
