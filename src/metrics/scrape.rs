//! One scrape: every core's cells, copied on their own core (one hop each over the metrics
//! hub), added up; the node-wide figures; `/proc/self`; encoded.

use std::rc::Rc;
use std::sync::Arc;

use crate::runtime::Hub;

use super::encode::{Build, Exposition, NodeFigures};
use super::{process, CoreMetrics, CoreSample};

/// A core's way to scrape the whole node.
pub struct Scraper {
    hub: Arc<Hub<CoreMetrics>>,
    /// Reads the node-wide figures on the scraping core.
    node: Box<dyn Fn() -> NodeFigures>,
    build: Build,
}

impl Scraper {
    pub fn new(
        hub: Arc<Hub<CoreMetrics>>,
        node: Box<dyn Fn() -> NodeFigures>,
        build: Build,
    ) -> Scraper {
        Scraper { hub, node, build }
    }

    /// The text of `/metrics`. A core that has stopped (shutdown) is left out.
    pub async fn render(&self) -> Result<String, std::fmt::Error> {
        let mut cores = CoreSample::default();
        for core in 0..self.hub.threads() {
            let sampled = self
                .hub
                .run_on(core, |local: Rc<CoreMetrics>| async move { local.sample() })
                .await;
            if let Ok(sample) = sampled {
                cores.add(&sample);
            }
        }
        Exposition {
            cores,
            node: (self.node)(),
            process: process::read(),
            build: self.build,
        }
        .encode()
    }
}
