//! A workflow drawn as server-rendered SVG (no script, so the CSP holds): each task a box
//! coloured by its status with its id and program, each "waits for" an arrow from the task
//! waited for to the one waiting. Tasks are laid out left to right by depth (a task sits one
//! column right of the deepest task it waits for), and within a column in the order of what
//! they wait for, so chains read as rows. This module only computes positions; the template
//! (`admin/_workflow.html`) writes the SVG, escaping every text.

use std::collections::HashMap;

use crate::{
    ids::TaskId,
    tasks::flow::{Workflow, WorkflowNode},
};

const NODE_WIDTH: i64 = 150;
const NODE_HEIGHT: i64 = 46;
const GAP_X: i64 = 48;
const GAP_Y: i64 = 14;
const PAD: i64 = 8;
/// Longer program names are cut (with …) to fit the box.
const NAME_CHARS: usize = 18;

pub struct Node {
    pub id: TaskId,
    pub x: i64,
    pub y: i64,
    /// The program's name, cut to fit.
    pub program: String,
    pub status: &'static str,
    /// The task whose page this is.
    pub current: bool,
}

pub struct Edge {
    /// The path's `d`: a curve from the right edge of the task waited for to the left edge of
    /// the waiting one.
    pub path: String,
    /// The task waited for has finished (drawn solid; dashed while it has not).
    pub done: bool,
}

pub struct Graph {
    pub width: i64,
    pub height: i64,
    pub node_width: i64,
    pub node_height: i64,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// The workflow has more tasks than drawn.
    pub cut: bool,
}

impl Graph {
    /// "3 tasks", for the figure's title.
    pub fn count_label(&self) -> String {
        match self.nodes.len() {
            1 => "1 task".to_owned(),
            n => format!("{n} tasks"),
        }
    }
}

/// Each task's column: 0 for a task that waits for none drawn here, else one more than the
/// deepest it waits for. The graph has no cycles (`run_program` refuses them), so this settles
/// within as many rounds as there are tasks; the bound also holds if it ever had one.
fn depths(nodes: &[WorkflowNode], edges: &[(TaskId, TaskId)]) -> HashMap<TaskId, usize> {
    let mut depth: HashMap<TaskId, usize> = nodes.iter().map(|node| (node.id, 0)).collect();
    for _ in 0..nodes.len() {
        let mut changed = false;
        for (task, upstream) in edges {
            let wanted = depth[upstream] + 1;
            if depth[task] < wanted && wanted < nodes.len() {
                depth.insert(*task, wanted);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

fn short_name(name: &str) -> String {
    if name.chars().count() > NAME_CHARS {
        format!("{}…", name.chars().take(NAME_CHARS - 1).collect::<String>())
    } else {
        name.to_owned()
    }
}

/// Lays out `workflow`, marking `current`.
pub fn layout(workflow: &Workflow, current: TaskId) -> Graph {
    let depth = depths(&workflow.nodes, &workflow.edges);
    let columns = depth.values().max().map_or(0, |deepest| deepest + 1);
    // Column by column, each task placed by the mean row of the tasks it waits for (then by
    // id), so a task sits level with what it waits for where it can.
    let mut row_of: HashMap<TaskId, usize> = HashMap::new();
    let mut rows = 0;
    for column in 0..columns {
        let mut here: Vec<&WorkflowNode> = workflow
            .nodes
            .iter()
            .filter(|node| depth[&node.id] == column)
            .collect();
        let mean_upstream_row = |id: TaskId| {
            let upstream: Vec<usize> = workflow
                .edges
                .iter()
                .filter(|(task, _)| *task == id)
                .filter_map(|(_, up)| row_of.get(up).copied())
                .collect();
            match upstream.len() {
                0 => 0,
                n => upstream.iter().sum::<usize>() * 1000 / n,
            }
        };
        here.sort_by_key(|node| (mean_upstream_row(node.id), node.id));
        for (row, node) in here.iter().enumerate() {
            row_of.insert(node.id, row);
        }
        rows = rows.max(here.len());
    }
    let position = |id: &TaskId| {
        let x = PAD + depth[id] as i64 * (NODE_WIDTH + GAP_X);
        let y = PAD + row_of[id] as i64 * (NODE_HEIGHT + GAP_Y);
        (x, y)
    };
    let nodes = workflow
        .nodes
        .iter()
        .map(|node| {
            let (x, y) = position(&node.id);
            Node {
                id: node.id,
                x,
                y,
                program: short_name(&node.program),
                status: node.status.as_str(),
                current: node.id == current,
            }
        })
        .collect();
    let finished: HashMap<TaskId, bool> = workflow
        .nodes
        .iter()
        .map(|node| {
            (
                node.id,
                node.status == crate::tasks::status::TaskStatus::Finished,
            )
        })
        .collect();
    let edges = workflow
        .edges
        .iter()
        .map(|(task, upstream)| {
            let (from_x, from_y) = position(upstream);
            let (to_x, to_y) = position(task);
            let (x1, y1) = (from_x + NODE_WIDTH, from_y + NODE_HEIGHT / 2);
            // The arrowhead ends at the box.
            let (x2, y2) = (to_x - 4, to_y + NODE_HEIGHT / 2);
            let bend = (x2 - x1).abs() / 2;
            Edge {
                path: format!(
                    "M{x1} {y1} C{} {y1} {} {y2} {x2} {y2}",
                    x1 + bend,
                    x2 - bend
                ),
                done: finished[upstream],
            }
        })
        .collect();
    let columns = columns as i64;
    let rows = rows as i64;
    Graph {
        width: 2 * PAD + columns * NODE_WIDTH + (columns - 1).max(0) * GAP_X,
        height: 2 * PAD + rows * NODE_HEIGHT + (rows - 1).max(0) * GAP_Y,
        node_width: NODE_WIDTH,
        node_height: NODE_HEIGHT,
        nodes,
        edges,
        cut: workflow.cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::status::TaskStatus;

    fn node(id: i64, status: TaskStatus) -> WorkflowNode {
        WorkflowNode {
            id: TaskId(id),
            program: "a_program_with_a_long_name".into(),
            status,
        }
    }

    #[test]
    fn a_diamond_is_laid_out_in_three_columns() {
        // 1 -> 2, 1 -> 3, (2, 3) -> 4
        let workflow = Workflow {
            nodes: vec![
                node(4, TaskStatus::Pending),
                node(2, TaskStatus::Finished),
                node(3, TaskStatus::Running),
                node(1, TaskStatus::Finished),
            ],
            edges: vec![
                (TaskId(2), TaskId(1)),
                (TaskId(3), TaskId(1)),
                (TaskId(4), TaskId(2)),
                (TaskId(4), TaskId(3)),
            ],
            cut: false,
        };
        let graph = layout(&workflow, TaskId(3));
        let at = |id: i64| {
            let node = graph.nodes.iter().find(|n| n.id == TaskId(id)).unwrap();
            (node.x, node.y)
        };
        assert_eq!(at(1).0, PAD);
        assert_eq!(at(2).0, at(3).0);
        assert!(at(2).0 > at(1).0 && at(4).0 > at(2).0);
        assert!(at(2).1 < at(3).1, "siblings in id order");
        assert_eq!(at(1).1, at(2).1);
        assert_eq!(graph.width, 2 * PAD + 3 * NODE_WIDTH + 2 * GAP_X);
        assert_eq!(graph.height, 2 * PAD + 2 * NODE_HEIGHT + GAP_Y);
        assert!(
            graph
                .nodes
                .iter()
                .all(|n| n.program.chars().count() <= NAME_CHARS)
        );
        assert_eq!(graph.nodes.iter().filter(|n| n.current).count(), 1);
        // (4 waits for 3): 3 is running, so the arrow is dashed.
        assert_eq!(graph.edges.iter().filter(|e| e.done).count(), 3);
    }

    #[test]
    fn a_task_deeper_than_its_siblings_moves_right() {
        // 3 waits for 1 and for 2, which waits for 1: 3 goes to column 2.
        let workflow = Workflow {
            nodes: vec![
                node(1, TaskStatus::Finished),
                node(2, TaskStatus::Finished),
                node(3, TaskStatus::Scheduled),
            ],
            edges: vec![
                (TaskId(2), TaskId(1)),
                (TaskId(3), TaskId(1)),
                (TaskId(3), TaskId(2)),
            ],
            cut: true,
        };
        let graph = layout(&workflow, TaskId(1));
        let x3 = graph.nodes.iter().find(|n| n.id == TaskId(3)).unwrap().x;
        assert_eq!(x3, PAD + 2 * (NODE_WIDTH + GAP_X));
        assert!(graph.cut);
    }
}
