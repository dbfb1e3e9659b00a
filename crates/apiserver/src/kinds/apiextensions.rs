use super::Kind;

/// CustomResourceDefinitions: strategy and validation in `crate::crd::validation`; the
/// controller that establishes them in `crate::crd`.
pub static CUSTOM_RESOURCE_DEFINITIONS: Kind = Kind {
    on_create: crate::crd::validation::on_create,
    on_update: crate::crd::validation::on_update,
    ..Kind::new(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        crate::crd::validation::admit,
    )
};
