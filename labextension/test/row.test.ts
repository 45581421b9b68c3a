import { whyDisabled } from '../src/view/row';

describe('whyDisabled (the tooltip of a greyed-out button)', () => {
  it('is read off ALLOWED_ACTIONS, so it never contradicts the buttons', () => {
    expect(whyDisabled('reload')).toBe('reload: possible when loaded, initialized, running or stopped');
    expect(whyDisabled('stop')).toBe('stop: possible when running');
    expect(whyDisabled('start')).toBe('start: possible when loaded, initialized, stopped or failed');
  });
});
