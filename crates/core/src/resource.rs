//! Compact stand-ins for k8s-openapi types.
//!
//! Watch caches decode objects into small types that declare only the fields they read.
//! [`resource_like!`](crate::resource_like) makes such a type a Kubernetes resource in the eyes
//! of kube (its URL, kind and metadata are those of the type it stands for), so the stock
//! `Api`, `watcher` and `reflector` work on it unchanged.

#[doc(hidden)]
pub use k8s_openapi as __k8s_openapi;

/// Implements k8s-openapi's `Resource` (as `$like`'s) and `Metadata` for `$ty`, a type with a
/// `metadata: ObjectMeta` field, so kube's blanket `kube::Resource` impl applies. Generic
/// parameters, if any, come first in angle brackets.
///
/// ```
/// use k8s_openapi::api::core::v1::Pod;
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
///
/// struct PodName {
///     metadata: ObjectMeta,
/// }
/// pernode_core::resource_like!(PodName => Pod);
///
/// struct Tagged<T> {
///     metadata: ObjectMeta,
///     tag: T,
/// }
/// pernode_core::resource_like!(<T> Tagged<T> => Pod);
///
/// use k8s_openapi::Resource;
/// assert_eq!(<PodName as Resource>::URL_PATH_SEGMENT, "pods");
/// assert_eq!(<Tagged<u8> as Resource>::KIND, "Pod");
/// ```
#[macro_export]
macro_rules! resource_like {
    (<$($g:ident),*> $ty:ty => $like:ty) => {
        impl<$($g),*> $crate::resource::__k8s_openapi::Resource for $ty {
            const API_VERSION: &'static str =
                <$like as $crate::resource::__k8s_openapi::Resource>::API_VERSION;
            const GROUP: &'static str = <$like as $crate::resource::__k8s_openapi::Resource>::GROUP;
            const KIND: &'static str = <$like as $crate::resource::__k8s_openapi::Resource>::KIND;
            const VERSION: &'static str =
                <$like as $crate::resource::__k8s_openapi::Resource>::VERSION;
            const URL_PATH_SEGMENT: &'static str =
                <$like as $crate::resource::__k8s_openapi::Resource>::URL_PATH_SEGMENT;
            type Scope = <$like as $crate::resource::__k8s_openapi::Resource>::Scope;
        }

        impl<$($g),*> $crate::resource::__k8s_openapi::Metadata for $ty {
            type Ty = $crate::resource::__k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

            fn metadata(&self) -> &Self::Ty {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut Self::Ty {
                &mut self.metadata
            }
        }
    };
    ($ty:ty => $like:ty) => {
        $crate::resource_like!(<> $ty => $like);
    };
}
