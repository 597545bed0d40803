import type { Problem } from "../lib/chatkit-errors";

type Props = {
  problem: Problem;
  onDismiss?: () => void;
};

/** A visible, actionable explanation of why the chat is not working. */
export function ProblemNotice({ problem, onDismiss }: Props) {
  return (
    <div className="problem" role="alert" data-testid="chat-problem">
      <h2>{problem.title}</h2>
      <ol>
        {problem.steps.map((step) => (
          <li key={step}>{step}</li>
        ))}
      </ol>
      {problem.link && (
        <p>
          <a href={problem.link.href} target="_blank" rel="noreferrer">
            {problem.link.href}
          </a>
        </p>
      )}
      {problem.detail && <code className="problem-detail">{problem.detail}</code>}
      {onDismiss && (
        <button type="button" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}
