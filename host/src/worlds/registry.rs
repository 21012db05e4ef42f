//! The registry of host capabilities: one line each, at the bottom. Adding
//! a capability is a module under `crate::capability` implementing
//! [`HostCapability`], a line here, and naming it in the worlds that import
//! it ([`super::World::capabilities`]).
//!
//! From the lines, [`registry!`] makes everything that composes the
//! capabilities: the [`Capability`] names a world lists (with what each
//! provides, for `gantry check`, and which table keys it reads), the
//! [`Grants`] a plugin's table gives them (read once, when the config is),
//! and the store data of an instance, [`PluginState`], holding each one's
//! state.

use crate::capability::{self, HostCapability, Part, Services, Store};
use crate::model::Identity;
use crate::runtime::limits::{Guards, PluginData};
use std::sync::Arc;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

/// Everything the capabilities' lines make; see the module's docs.
macro_rules! registry {
    ($($variant:ident / $field:ident: $cap:ty),* $(,)?) => {
        /// A host capability a world can link: one per registry line.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Capability {
            $(
                #[doc = concat!("`", stringify!($cap), "`.")]
                $variant,
            )*
        }

        impl Capability {
            /// Every registered capability, in registry order (the order
            /// they are linked in).
            pub const ALL: &'static [Capability] = &[$(Capability::$variant),*];

            /// Its name in messages.
            pub fn name(self) -> &'static str {
                match self {
                    $(Capability::$variant => <$cap as HostCapability>::NAME,)*
                }
            }

            /// What it provides: `(interface, compatible version)` pairs.
            pub fn provides(self) -> &'static [(&'static str, &'static str)] {
                match self {
                    $(Capability::$variant => <$cap as HostCapability>::PROVIDES,)*
                }
            }

            /// The keys of a plugin's table it reads.
            pub fn keys(self) -> &'static [&'static str] {
                match self {
                    $(Capability::$variant => <$cap as HostCapability>::KEYS,)*
                }
            }

            /// Whether a reload applies a change of its keys to a running plugin.
            pub fn live(self) -> bool {
                match self {
                    $(Capability::$variant => <$cap as HostCapability>::LIVE,)*
                }
            }

            /// Link it into `l`.
            pub(super) fn link(self, l: &mut Linker<PluginState>) -> wasmtime::Result<()> {
                match self {
                    $(Capability::$variant => <$cap as HostCapability>::link(l),)*
                }
            }
        }

        /// What a plugin's table grants each capability its world links
        /// (the others keep their defaults), read once.
        #[derive(Debug, Clone, Default)]
        pub struct Grants {
            $($field: <$cap as HostCapability>::Grant,)*
        }

        impl Grants {
            /// Read the grants of the capabilities in `linked` from a
            /// plugin's table; the error names the key.
            pub fn read(table: &toml::Table, linked: &[Capability]) -> Result<Grants, String> {
                let mut grants = Grants::default();
                $(
                    if linked.contains(&Capability::$variant) {
                        grants.$field = <$cap as HostCapability>::grant(table)?;
                    }
                )*
                Ok(grants)
            }

            /// These grants, with those a reload applies live taken from `next`.
            pub fn with_live(&self, next: &Grants) -> Grants {
                Grants {
                    $($field: if <$cap as HostCapability>::LIVE {
                        next.$field.clone()
                    } else {
                        self.$field.clone()
                    },)*
                }
            }

            /// Make what the grants need before serving.
            pub fn prepare(&self) -> Result<(), String> {
                $(<$cap as HostCapability>::prepare(&self.$field)?;)*
                Ok(())
            }
        }

        /// Each capability's state in one instance.
        struct Parts {
            $($field: <$cap as HostCapability>::State,)*
        }

        impl Parts {
            fn new(grants: &Grants, services: &Services) -> Self {
                Self {
                    $($field: <$cap as HostCapability>::state(&grants.$field, services),)*
                }
            }

            fn bind(&mut self, identity: &Identity) {
                $(<$cap as HostCapability>::bind(&mut self.$field, identity);)*
            }
        }

        $(
            impl Store<$cap> for PluginState {
                fn part(&mut self) -> Part<'_, $cap> {
                    Part {
                        state: &mut self.parts.$field,
                        table: &mut self.table,
                        answer_by: self.guards.answer_by(),
                    }
                }
            }
        )*
    };
}

registry! {
    Wasi / wasi: capability::wasi::Wasi,
    OutgoingHttp / outgoing_http: capability::outgoing_http::OutgoingHttp,
    Logging / logging: capability::logging::Logging,
    Settings / settings: capability::settings::Settings,
    Control / control: capability::control::Control,
    MqttClient / mqtt_client: capability::mqtt_client::MqttClient,
    Progress / progress: capability::progress::Progress,
    Devices / devices: capability::devices::Devices,
    Allocations / allocations: capability::allocations::Allocations,
    Downstream / downstream: capability::downstream::Downstream,
    Artifacts / artifacts: capability::artifacts::Artifacts,
}

/// What every instance of one plugin is made from, decided at start-up
/// (and again by a reload that changes its live grants).
#[derive(Clone)]
pub struct PluginSetup {
    /// What its table grants.
    pub grants: Arc<Grants>,
    /// The host's services its world uses.
    pub services: Services,
}

impl PluginSetup {
    /// The store data of a fresh instance.
    pub fn instance(&self, guards: Guards) -> PluginState {
        PluginState {
            guards,
            table: ResourceTable::new(),
            parts: Parts::new(&self.grants, &self.services),
        }
    }
}

/// Store data of a plugin instance: the runtime's guards, the resource
/// table, and each capability's state.
pub struct PluginState {
    guards: Guards,
    table: ResourceTable,
    parts: Parts,
}

impl PluginState {
    /// Act as `identity` in the call about to be made (the host's choice only).
    pub fn bind(&mut self, identity: Identity) {
        self.parts.bind(&identity);
    }
}

impl PluginData for PluginState {
    fn guards(&mut self) -> &mut Guards {
        &mut self.guards
    }

    fn end_call(&mut self) {
        self.bind(Identity::None);
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        capability::wasi::view(Store::<capability::wasi::Wasi>::part(self))
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        capability::outgoing_http::view(Store::<capability::outgoing_http::OutgoingHttp>::part(
            self,
        ))
    }
}
